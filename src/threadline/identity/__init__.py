"""Identifiers, their normalisation, real-time stitching of messages to unified profiles, explicit
merges and unmerges."""

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
from threadline.identity.merging import MergeInfo, get_merge, merge_profiles, pair_was_unmerged
from threadline.identity.stitch import IdentityGraph, StitchCause, lock_key, new_profile_id
from threadline.identity.unmerge import UnmergeInfo, unmerge

__all__ = [
    "ANONYMOUS_ID",
    "BUILT_IN_KINDS",
    "EMAIL",
    "PHONE",
    "USER_ID",
    "Identifier",
    "IdentityGraph",
    "InvalidIdentifier",
    "MergeInfo",
    "StitchCause",
    "UnmergeInfo",
    "get_merge",
    "lock_key",
    "merge_profiles",
    "new_profile_id",
    "normalise",
    "pair_was_unmerged",
    "priority",
    "unmerge",
]
