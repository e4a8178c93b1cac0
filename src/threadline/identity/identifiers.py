"""Identifiers: the kinds Threadline knows and how each one is normalised before matching.

Matching is exact on the normalised value, so normalisation is where "Wei.Zhang@Example.com " and
"wei.zhang@example.com", or "138 0013 8000" and "+8613800138000", become the same person.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
EMAIL = "email"
PHONE = "phone"
BUILT_IN_KINDS = (USER_ID, EMAIL, PHONE, ANONYMOUS_ID)
MAX_VALUE_LENGTH = 320


class InvalidIdentifier(ValueError):
    """An identifier that cannot be normalised; `field` names where it came from."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True, order=True)
class Identifier:
    kind: str
    value: str


def priority(kinds: list[str] | tuple[str, ...]) -> dict[str, int]:
    """Rank of each kind when a message's identifiers disagree: a user_id is the strongest claim,
    then email and phone, then configured kinds, and an anonymous id (a browser, a device) the weakest."""
    order = [USER_ID, EMAIL, PHONE, *[k for k in kinds if k not in BUILT_IN_KINDS], ANONYMOUS_ID]
    return {kind: rank for rank, kind in enumerate(order)}


@lru_cache(maxsize=65536)
def normalise_email(raw: str) -> str:
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"not a valid email address ({error})") from None
    return result.normalized.lower()


@lru_cache(maxsize=65536)
def normalise_phone(raw: str, region: str) -> str:
    try:
        number = phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"not a phone number ({error})") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number for its region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise(kind: str, raw: object, *, region: str, field: str) -> Identifier:
    """Normalise one raw value of `kind`; raises InvalidIdentifier naming `field`."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidIdentifier(field, "must be a string")
    text = str(raw).strip()
    if not text:
        raise InvalidIdentifier(field, "must not be empty")
    if len(text) > MAX_VALUE_LENGTH:
        raise InvalidIdentifier(field, f"longer than {MAX_VALUE_LENGTH} characters")
    try:
        if kind == EMAIL:
            text = normalise_email(text)
        elif kind == PHONE:
            text = normalise_phone(text, region)
    except ValueError as error:
        raise InvalidIdentifier(field, str(error)) from None
    return Identifier(kind, text)
