"""Open and click tracking for email: a 1x1 image and signed redirects, per message.

When an email goes out tracked (THREADLINE_EMAIL_TRACKING on, and the customer granted analytics
consent by email: tracking is analytics), its HTML part gets an image at
`{public_url}/email/open/{token}.gif` and each http(s) link becomes `{public_url}/email/click/{token}`.
The text part and the unsubscribe link (the footer and List-Unsubscribe, added after this) are left as
written: an unsubscribe must never depend on a redirect.

Tokens are `{message id}.{signature}` and `{message id}.{link hash}.{signature}`, HMAC-SHA256 under a
key derived from the privacy key (privacy/keys.py, like unsubscribe links: a link must work on any
server, for years). The redirect goes only to a link the stored message holds whose hash the token
names, so a token cannot be made to send anyone elsewhere: no open redirect.

Each hit sets `first_opened_at` / `first_clicked_at` on the message once and puts "Email Opened" /
"Email Link Clicked" on the timeline (timeline.py), once per message and once per message and link:
mail privacy proxies and link scanners fetch repeatedly, and analytics counts these events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from threadline.config import Settings
from threadline.messaging.timeline import OPENED, record_engagement
from threadline.privacy import check_send, live_profile_id, privacy_key
from threadline.storage import Database
from threadline.storage.models import OutboundMessage

OPEN_PATH = "/email/open/"
CLICK_PATH = "/email/click/"
CLICKED = "clicked"
# The smallest transparent GIF: what the open image answers, whatever the token.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_HREF = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_SIGNATURE_BYTES = 16  # 128 bits: unguessable, and short enough for a tidy link
_LINK_HASH_BYTES = 9  # tells the links of one message apart


class InvalidToken(ValueError):
    """A tracking token that is forged, garbled or cut short."""


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str  # opened | clicked
    message_id: int
    link_hash: str | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def tracking_key(conn: Connection, settings: Settings) -> bytes:
    """A key of its own, derived from the privacy key: a tracking token can never pass for an
    unsubscribe token or a suppression hash."""
    return hmac.new(privacy_key(conn, settings), b"threadline.email-tracking", hashlib.sha256).digest()


def _sign(key: bytes, text: str) -> str:
    return _b64(hmac.new(key, text.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES])


def link_hash(url: str) -> str:
    return _b64(hashlib.sha256(url.encode()).digest()[:_LINK_HASH_BYTES])


def open_token(key: bytes, message_id: int) -> str:
    return f"{message_id}.{_sign(key, f'{OPENED}:{message_id}')}"


def click_token(key: bytes, message_id: int, url: str) -> str:
    digest = link_hash(url)
    return f"{message_id}.{digest}.{_sign(key, f'{CLICKED}:{message_id}:{digest}')}"


def read_token(key: bytes, token: str, kind: str) -> Hit:
    """The message (and link) a token names; InvalidToken when its signature does not hold."""
    parts = token.split(".")
    if len(parts) != (2 if kind == OPENED else 3) or not parts[0].isdigit() or len(parts[0]) > 19:
        raise InvalidToken("this link is not valid")
    message_id = int(parts[0])
    digest = parts[1] if kind == CLICKED else None
    signed = f"{kind}:{message_id}" + (f":{digest}" if digest else "")
    if not hmac.compare_digest(parts[-1], _sign(key, signed)):
        raise InvalidToken("this link is not valid")
    return Hit(kind, message_id, digest)


def _trackable(url: str, public_url: str) -> bool:
    base = public_url.rstrip("/")
    if not url.lower().startswith(("http://", "https://")):
        return False  # mailto:, tel:, #anchors: nothing to follow through a redirect
    # The customer's way out stays a direct link; a link to our own tracking is not wrapped twice.
    return not url.startswith((f"{base}/unsubscribe/", f"{base}{OPEN_PATH}", f"{base}{CLICK_PATH}"))


def trackable_links(body_html: str, public_url: str) -> list[str]:
    """The links of an HTML body that tracking redirects, as URLs (entities decoded)."""
    found = (html.unescape(_href(match)) for match in _HREF.finditer(body_html))
    return [url for url in found if _trackable(url, public_url)]


def _href(match: re.Match[str]) -> str:
    return match.group(2) if match.group(2) is not None else match.group(3)


def with_tracking(body_html: str, settings: Settings, key: bytes, message_id: int) -> str:
    """`body_html` with its links through the click redirect and the open image before </body>."""
    base = settings.public_url.rstrip("/")

    def redirect(match: re.Match[str]) -> str:
        url = html.unescape(_href(match))
        if not _trackable(url, settings.public_url):
            return match.group(0)
        tracked = html.escape(f"{base}{CLICK_PATH}{click_token(key, message_id, url)}", quote=True)
        return f'{match.group(1)}"{tracked}"'

    rewritten = _HREF.sub(redirect, body_html)
    image = (
        f'<img src="{base}{OPEN_PATH}{open_token(key, message_id)}.gif" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0">\n'
    )
    at = rewritten.lower().rfind("</body>")
    return rewritten + image if at < 0 else rewritten[:at] + image + rewritten[at:]


def may_track(session: Session, settings: Settings, profile_id: str) -> bool:
    """Whether opens and clicks of an email to the customer may be recorded now: the setting, a public
    URL to point at, and analytics consent by email (restricted processing refuses it too)."""
    if not settings.email_tracking or not settings.public_url:
        return False
    return check_send(session, profile_id, "email", "analytics").allowed


def record_hit(db: Database, settings: Settings, token: str, kind: str, *, now: datetime) -> str | None:
    """Record an open or a click; answers the URL a click goes to (None for an open, or when the
    message or link is gone). InvalidToken when forged. The link is followed even when nothing may be
    recorded (tracking turned off or consent withdrawn since): a customer's click must always work."""
    with db.write() as session:
        hit = read_token(tracking_key(session.connection(), settings), token, kind)
        row = session.scalar(
            select(OutboundMessage).where(OutboundMessage.id == hit.message_id).with_for_update()
        )
        if row is None:
            return None  # erased with its customer
        url = None
        if kind == CLICKED:
            links = trackable_links(row.body_html or "", settings.public_url)
            url = next((link for link in links if link_hash(link) == hit.link_hash), None)
            if url is None:
                return None  # no such link in this message: nothing was clicked
        live = live_profile_id(session.connection(), row.profile_id)
        recording = row.tracked and may_track(session, settings, live)
        if recording:
            # A click means the email was opened, even with its images blocked.
            row.first_opened_at = row.first_opened_at or now
            if kind == CLICKED:
                row.first_clicked_at = row.first_clicked_at or now
        facts = (row.id, live, row.purpose, row.subject, row.origin)
    if recording:
        message_id, profile_id, purpose, subject, origin = facts
        engagements: list[tuple[str | None, str | None]] = [(None, None)]
        if kind == CLICKED and url is not None:
            engagements.append((url, hit.link_hash))
        for link_url, digest in engagements:  # the open (a click implies one), then the click
            record_engagement(
                db,
                settings,
                message_id=message_id,
                profile_id=profile_id,
                purpose=purpose,
                subject=subject,
                origin=origin,
                url=link_url,
                link_hash=digest,
                now=now,
            )
    return url
