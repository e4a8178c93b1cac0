"""What a stored event said about its person: its identifiers and the traits it gave the profile.

An unmerge re-reads events to decide where each belongs and to rebuild each profile's traits
(identity/unmerge.py). Both must come out exactly as ingestion read the message when it arrived, so
these follow `threadline.ingest.messages.parse_message` step by step: keep the two in sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from threadline.identity.identifiers import (
    ANONYMOUS_ID,
    EMAIL,
    PHONE,
    USER_ID,
    Identifier,
    InvalidIdentifier,
    normalise,
)


def _person_traits(event: Mapping[Any, Any]) -> dict[str, Any] | None:
    # A group call's traits are the group's (parse_message: person_traits).
    traits = event["traits"]
    return traits if event["type"] == "identify" and isinstance(traits, dict) else None


def _context_traits(event: Mapping[Any, Any]) -> dict[str, Any] | None:
    traits = (event["context"] or {}).get("traits")
    return traits if isinstance(traits, dict) else None


def _identifiers_in(traits: dict[str, Any] | None, kinds: tuple[str, ...], region: str) -> list[Identifier]:
    found: list[Identifier] = []
    for kind in (EMAIL, PHONE, *kinds):
        raw = (traits or {}).get(kind)
        if raw is None or raw == "":
            continue
        try:
            found.append(normalise(kind, raw, region=region, field=kind))
        except InvalidIdentifier:
            continue  # accepted under another region setting; it cannot match anything now
    return found


def recorded_identifiers(
    event: Mapping[Any, Any], *, kinds: tuple[str, ...], region: str
) -> list[Identifier]:
    """The identifiers ingestion read from the message behind `event` (an `events` row as a mapping),
    with an alias's previousId as both kinds it may have named (parse_message: alias_candidates)."""
    found: list[Identifier] = []
    if event["user_id"]:
        found.append(Identifier(USER_ID, event["user_id"]))
    if event["anonymous_id"]:
        found.append(Identifier(ANONYMOUS_ID, event["anonymous_id"]))
    found += _identifiers_in(_person_traits(event), kinds, region)
    found += _identifiers_in(_context_traits(event), kinds, region)
    device = (event["context"] or {}).get("device")
    if "device_id" in kinds and isinstance(device, dict) and device.get("id"):
        with suppress(InvalidIdentifier):  # accepted under another setting; it cannot match now
            found.append(normalise("device_id", device["id"], region=region, field="context.device.id"))
    previous = (event["properties"] or {}).get("previousId") if event["type"] == "alias" else None
    if isinstance(previous, str) and previous:
        found += [Identifier(USER_ID, previous), Identifier(ANONYMOUS_ID, previous)]
    return found


def recorded_profile_traits(event: Mapping[Any, Any], *, region: str) -> dict[str, Any]:
    """The traits the message behind `event` applied to its profile: context.traits, then an identify's
    traits over them, with an email or phone spelled as it matches."""
    person, context = _person_traits(event), _context_traits(event)
    traits = dict(context or {})
    if person:
        traits.update(person)
    matched = [
        i
        for i in (*_identifiers_in(person, (), region), *_identifiers_in(context, (), region))
        if i.kind in (EMAIL, PHONE)
    ]
    for ident in reversed(matched):  # traits are applied after context.traits: they win
        if ident.kind in traits:
            traits[ident.kind] = ident.value
    return traits
