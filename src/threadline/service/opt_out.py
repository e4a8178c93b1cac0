"""Opting out by reply: an SMS or WhatsApp message that says only STOP (or UNSUBSCRIBE, 退订, TD)
withdraws the customer's marketing consent on that channel, through the consent ledger exactly as an
unsubscribe link does (threadline.privacy.unsubscribe: source "unsubscribe", once).

Marketing texts on these channels say how (messaging/providers.py: "Reply STOP to opt out"). Only the
marketing purpose is withdrawn: replies to the customer's own questions are service messages, which a
keyword meant for promotions should not silence (a customer who wants none says so to an agent, who
records it). The keyword must be the whole message, give or take punctuation and case: "please stop
sending the wrong size" is a message for an agent, not an opt-out.

An opt-out is an instruction to the system, not a request for the desk: it opens no conversation (a
campaign's STOP replies would otherwise flood the Unassigned queue). The consent ledger keeps it, with
the provider's message id as evidence.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import NotFound
from threadline.privacy import UnsubscribeLink, unsubscribe
from threadline.profiles import lookup_profile
from threadline.storage import Database

OPT_OUT_CHANNELS = ("sms", "whatsapp")  # the channels messaging puts the footer on
# The carriers' standard words (CTIA: STOP, STOPALL, UNSUBSCRIBE; China: 退订, TD). CANCEL, END and QUIT
# are left out: a customer answering "Cancel" about an order means the order.
OPT_OUT_KEYWORDS = frozenset({"stop", "stopall", "unsubscribe", "退订", "td"})


@dataclass(frozen=True, slots=True)
class OptedOut:
    """An opt-out reply taken: the live profile it was recorded on (None for a number no customer
    has) and whether this reply recorded it (False when they had opted out already: a redelivery)."""

    channel: str
    profile_id: str | None
    recorded: bool


def is_opt_out(text: str) -> bool:
    """Whether the message is only an opt-out keyword (case, spaces, punctuation and full-width forms
    aside: "Stop!", "ＳＴＯＰ", "退订。")."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    word = "".join(c for c in folded if not unicodedata.category(c).startswith(("P", "Z", "C", "S")))
    return word in OPT_OUT_KEYWORDS


def take_opt_out(
    db: Database,
    settings: Settings,
    *,
    channel: str,
    kind: str,
    sender: str,
    keyword: str,
    provider_message_id: str | None,
    now: datetime,
) -> OptedOut:
    """Withdraw marketing consent on `channel` for the customer whose `kind` identifier is `sender`
    (normalised already)."""
    try:
        profile_id = lookup_profile(db, kind, sender, region=settings.default_region, viewer=Viewer.system())
    except NotFound:  # nobody we know, or erased: nothing to withdraw
        return OptedOut(channel, None, False)
    evidence = {
        "via": f"{channel} reply",
        "keyword": keyword.strip()[:40],
        "message_id": (provider_message_id or "")[:200],
    }
    link = UnsubscribeLink(profile_id, channel, "marketing")
    try:
        recorded = unsubscribe(db, link, now=now, evidence=evidence)
    except NotFound:  # erased between the lookup and now
        return OptedOut(channel, None, False)
    return OptedOut(channel, profile_id, recorded is not None)
