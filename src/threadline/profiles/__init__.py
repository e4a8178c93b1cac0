"""The unified profile: its state while written, and the reads behind the REST API."""

# state first: threadline.identity imports ProfileState while this package is still initialising.
from threadline.profiles.state import ProfileState, TraitObservation, display_name

# isort: split
from threadline.profiles.customers import (
    COUNT_CAP,
    SEARCH_COUNT_CAP,
    CustomerQuery,
    assign_owner,
    change_tags,
    count_cap,
    export_customers,
    list_customers,
    list_views,
    may_change,
    save_view,
    share_customer,
    view_query,
)
from threadline.profiles.reads import (
    ProfileNotFound,
    lookup_profile,
    profile_view,
    resolve_profile_id,
    timeline_page,
    trait_history,
)

__all__ = [
    "COUNT_CAP",
    "SEARCH_COUNT_CAP",
    "CustomerQuery",
    "ProfileNotFound",
    "ProfileState",
    "TraitObservation",
    "assign_owner",
    "change_tags",
    "count_cap",
    "display_name",
    "export_customers",
    "list_customers",
    "list_views",
    "lookup_profile",
    "may_change",
    "profile_view",
    "resolve_profile_id",
    "save_view",
    "share_customer",
    "timeline_page",
    "trait_history",
    "view_query",
]
