"""The unified profile: its state while written, and the reads behind the REST API."""

# state first: threadline.identity imports ProfileState while this package is still initialising.
from threadline.profiles.state import ProfileState, TraitObservation, display_name

# isort: split
from threadline.profiles.reads import (
    ProfileNotFound,
    find_profiles,
    lookup_profile,
    profile_view,
    recent_profiles,
    resolve_profile_id,
    timeline_page,
    trait_history,
)

__all__ = [
    "ProfileNotFound",
    "ProfileState",
    "TraitObservation",
    "display_name",
    "find_profiles",
    "lookup_profile",
    "profile_view",
    "recent_profiles",
    "resolve_profile_id",
    "timeline_page",
    "trait_history",
]
