"""The unified profile: its state while written, and the reads behind the REST API."""

# state and golden first: threadline.identity imports them while this package is still initialising.
from threadline.profiles.golden import (
    DEFAULT_RULES,
    GOLDEN_RULES_KEY,
    RULES,
    GoldenRules,
    GoldenSetting,
    Recomputed,
    check_rules,
    get_golden_rules,
    golden_rules_in,
    recompute_golden,
    set_golden_rules,
)
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
    "DEFAULT_RULES",
    "GOLDEN_RULES_KEY",
    "RULES",
    "SEARCH_COUNT_CAP",
    "CustomerQuery",
    "GoldenRules",
    "GoldenSetting",
    "ProfileNotFound",
    "ProfileState",
    "Recomputed",
    "TraitObservation",
    "assign_owner",
    "change_tags",
    "check_rules",
    "count_cap",
    "display_name",
    "export_customers",
    "get_golden_rules",
    "golden_rules_in",
    "list_customers",
    "list_views",
    "lookup_profile",
    "may_change",
    "profile_view",
    "recompute_golden",
    "resolve_profile_id",
    "save_view",
    "set_golden_rules",
    "share_customer",
    "timeline_page",
    "trait_history",
    "view_query",
]
