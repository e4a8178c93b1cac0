"""Identifiers, their normalisation, and real-time stitching of messages to unified profiles."""

from threadline.identity.identifiers import (
    ANONYMOUS_ID,
    BUILT_IN_KINDS,
    EMAIL,
    PHONE,
    USER_ID,
    Identifier,
    InvalidIdentifier,
    normalise,
    priority,
)
from threadline.identity.stitch import IdentityGraph, StitchCause, lock_key, new_profile_id

__all__ = [
    "ANONYMOUS_ID",
    "BUILT_IN_KINDS",
    "EMAIL",
    "PHONE",
    "USER_ID",
    "Identifier",
    "IdentityGraph",
    "InvalidIdentifier",
    "StitchCause",
    "lock_key",
    "new_profile_id",
    "normalise",
    "priority",
]
