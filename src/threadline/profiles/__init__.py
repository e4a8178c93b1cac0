"""The unified profile: its state while written, and the reads behind the REST API."""

from threadline.profiles.reads import (
    ProfileNotFound,
    find_profiles,
    lookup_profile,
    profile_view,
    resolve_profile_id,
    timeline_page,
    trait_history,
)
from threadline.profiles.state import ProfileState, TraitObservation, display_name

__all__ = [
    "ProfileNotFound",
    "ProfileState",
    "TraitObservation",
    "display_name",
    "find_profiles",
    "lookup_profile",
    "profile_view",
    "resolve_profile_id",
    "timeline_page",
    "trait_history",
]
