"""What a viewer sees of customers' personal data: in clear, or masked.

Users without the pii permission (analysts, who report rather than serve) see every identifier and the
personal traits of THREADLINE_MASKED_TRAITS masked: `138****8000`, `j***@example.com`, `Z**`, `****`.
Encrypted traits (privacy/encryption.py) open for viewers with the permission and show `****` to the
others, whose reads never touch the keys. Every surface that shows a customer (the list and search,
the 360 page, the REST profile, timeline and trait history, CSV exports) passes what it read through
one `Disclosure`, so a masking rule changes in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers

from threadline.config import Settings
from threadline.privacy.encryption import CannotDecrypt, TraitCipher, decryption_cipher, is_sealed

MASK = "****"
# Identifier kinds every message may carry, whatever THREADLINE_IDENTIFIER_KINDS adds (threadline.identity).
BUILT_IN_IDENTIFIERS = frozenset({"email", "phone", "user_id", "anonymous_id"})
_NAME_KEYS = frozenset({"name", "full_name", "fullName", "first_name", "firstName", "last_name", "lastName"})
_PHONE_KEYS = frozenset({"phone", "mobile", "phone_number", "phoneNumber"})


def mask_email(value: str) -> str:
    """`j***@example.com`: the first letter and the domain, which tells a typo from a real address."""
    local, at, domain = value.partition("@")
    if not at:
        return mask_text(value)
    return f"{local[:1]}***@{domain}"


def mask_phone(value: str) -> str:
    """`138****8000`: the first three and last four digits of the national number, as Chinese apps and
    bank statements show it, behind the country code when the number has one (`+86 138****8000`)."""
    digits = "".join(ch for ch in value if ch.isdigit())
    prefix = ""
    if value.strip().startswith("+"):
        try:
            number = phonenumbers.parse(value)
            prefix, digits = f"+{number.country_code} ", str(number.national_number)
        except phonenumbers.NumberParseException:
            pass
    if len(digits) < 8:
        return prefix + "*" * max(len(digits) - 2, 2) + digits[-2:]
    return prefix + digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_name(value: str) -> str:
    """`Z**` / `张**`: the first letter, enough to recognise someone in a list one already knows."""
    text = value.strip()
    return f"{text[:1]}**" if text else value


def mask_text(value: str) -> str:
    """Other identifiers: the last four characters of a long one (an order or loyalty number's tail is
    what support reads back), nothing of a short one."""
    return f"{MASK}{value[-4:]}" if len(value) > 8 else MASK


def mask_trait(key: str, value: Any) -> Any:
    """A personal trait's value, masked by what the key says it is."""
    if value is None or value == "":
        return value
    if not isinstance(value, str):
        return MASK  # a number, an address object, a list: nothing of it
    lowered = key.lower()
    if "email" in lowered or (lowered in BUILT_IN_IDENTIFIERS and "@" in value):
        return mask_email(value)
    if key in _PHONE_KEYS or "phone" in lowered:
        return mask_phone(value)
    if key in _NAME_KEYS:
        return mask_name(value)
    return MASK


def mask_identifier(kind: str, value: str | None) -> str | None:
    if not value:
        return value
    if kind == "email" or "@" in value:
        return mask_email(value)
    if kind == "phone":
        return mask_phone(value)
    return mask_text(value)


@dataclass(frozen=True, slots=True)
class Disclosure:
    """How much of the personal data one viewer sees; `reveal` is the viewer's pii permission."""

    reveal: bool
    masked_traits: frozenset[str]
    identifier_kinds: frozenset[str]
    cipher: TraitCipher | None = None

    @property
    def untouched(self) -> bool:
        """Nothing to mask and nothing to decrypt: reads pass through as they are."""
        return self.reveal and self.cipher is None

    def trait(self, key: str, value: Any) -> Any:
        if is_sealed(value):
            if not self.reveal or self.cipher is None:
                return MASK
            try:
                return self.cipher.open(key, value)
            except CannotDecrypt:
                return MASK  # its key was removed before rotation reached it: unreadable, not an error
        if self.reveal or (key not in self.masked_traits and key not in self.identifier_kinds):
            return value
        return mask_trait(key, value)

    def traits(self, values: Mapping[str, Any] | None) -> Any:
        if not values or self.untouched:
            return values
        return {key: self.trait(key, value) for key, value in values.items()}

    def identifier(self, kind: str, value: str | None) -> str | None:
        return value if self.reveal else mask_identifier(kind, value)

    def name(self, value: str | None) -> str | None:
        """A display name (made of the name traits), masked like them."""
        if self.reveal or value is None or not (self.masked_traits & _NAME_KEYS):
            return value
        return mask_name(value)

    def profile(self, view: dict[str, Any]) -> dict[str, Any]:
        """The 360 view (threadline.profiles.profile_view) as this viewer may see it."""
        if self.untouched:
            return view
        identities = []
        by_channel: dict[str, list[dict[str, Any]]] = {}
        shown: dict[int, dict[str, Any]] = {}
        for item in view["identities"]:
            shown[id(item)] = {**item, "value": self.identifier(item["kind"], item["value"])}
            identities.append(shown[id(item)])
        for channel, items in view["identities_by_channel"].items():
            by_channel[channel] = [shown.get(id(i)) or i for i in items]
        return {
            **view,
            "display_name": self.name(view["display_name"]),
            "traits": self.traits(view["traits"]),
            "trait_alternatives": {
                key: [{**alt, "value": self.trait(key, alt["value"])} for alt in alts]
                for key, alts in view["trait_alternatives"].items()
            },
            "identities": identities,
            "identities_by_channel": by_channel,
            "merged_from": [self._merge(m) for m in view["merged_from"]],
            "blocked_merges": [self._merge(m) for m in view["blocked_merges"]],
            "unmerged": [self._merge(m) for m in view["unmerged"]],
        }

    def _merge(self, merge: dict[str, Any]) -> dict[str, Any]:
        ident = merge.get("identifier") or {}
        if self.reveal or not ident.get("value"):
            return merge
        return {**merge, "identifier": {**ident, "value": self.identifier(ident["kind"], ident["value"])}}

    def timeline(self, page: dict[str, Any]) -> dict[str, Any]:
        """A timeline page (threadline.profiles.timeline_page): events' ids, traits and properties."""
        if self.untouched:
            return page
        return {**page, "events": [self.event(e) for e in page["events"]]}

    def event(self, event: dict[str, Any]) -> dict[str, Any]:
        context = dict(event.get("context") or {})
        if isinstance(context.get("traits"), dict):
            context["traits"] = self.traits(context["traits"])
        if not self.reveal:
            if context.get("ip"):
                context["ip"] = mask_text(str(context["ip"]))
            device = context.get("device")
            if isinstance(device, dict) and device.get("id"):
                context["device"] = {**device, "id": mask_text(str(device["id"]))}
        return {
            **event,
            "user_id": self.identifier("user_id", event.get("user_id")),
            "anonymous_id": self.identifier("anonymous_id", event.get("anonymous_id")),
            "properties": self.traits(event.get("properties")),
            "traits": self.traits(event.get("traits")),
            "context": context,
        }

    def history(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Trait history rows (threadline.profiles.trait_history)."""
        if self.untouched:
            return rows
        return [{**row, "value": self.trait(row["key"], row["value"])} for row in rows]

    def customer(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row of the customer list or search (display_name, email, phone)."""
        if self.reveal:
            return row
        return {
            **row,
            "display_name": self.name(row.get("display_name")),
            "email": mask_identifier("email", row.get("email")),
            "phone": mask_identifier("phone", row.get("phone")),
        }

    def export_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row of the CSV export (name, email, phone)."""
        if self.reveal:
            return row
        return {
            **row,
            "name": self.name(row.get("name")) or "",
            "email": mask_identifier("email", row.get("email")) or "",
            "phone": mask_identifier("phone", row.get("phone")) or "",
        }


def disclosure_for(settings: Settings, *, reveal: bool) -> Disclosure:
    """The disclosure for a viewer: `reveal` is `viewer.can("pii")`."""
    return Disclosure(
        reveal=reveal,
        masked_traits=frozenset(settings.masked_traits),
        identifier_kinds=BUILT_IN_IDENTIFIERS | frozenset(settings.identifier_kinds),
        cipher=decryption_cipher(settings) if reveal else None,
    )
