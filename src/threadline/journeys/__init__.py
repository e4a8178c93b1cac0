"""Journeys: automated customer journeys. A trigger (an event, entering or leaving a segment, a trait's
change, a date trait's anniversary, a daily schedule) enrols customers; the `journeys.run` job moves each
through waits, branches, A/B splits and actions (email, SMS and other channels through
threadline.messaging, timeline events, traits, tags, tasks for the owner, loyalty points) until the journey
ends or its exit goal is reached, each step exactly once. See docs/journeys.md."""

from threadline.journeys.catalog import (
    JourneyNotFound,
    create_from_template,
    create_journey,
    get_journey,
    journey_stats,
    list_journeys,
    may_manage,
    set_status,
    update_journey,
)
from threadline.journeys.definitions import (
    ACTIONS,
    PURPOSES,
    SEGMENT_CHANGES,
    STATUSES,
    STEP_TYPES,
    TRIGGERS,
    JourneyView,
)
from threadline.journeys.enrolment import enrol_from_events, enrol_scheduled
from threadline.journeys.runner import advance, claim_due, run_journeys
from threadline.journeys.templates import TEMPLATES
from threadline.journeys.trait_changes import TraitWatch, watch_traits

__all__ = [
    "ACTIONS",
    "PURPOSES",
    "SEGMENT_CHANGES",
    "STATUSES",
    "STEP_TYPES",
    "TEMPLATES",
    "TRIGGERS",
    "JourneyNotFound",
    "JourneyView",
    "TraitWatch",
    "advance",
    "claim_due",
    "create_from_template",
    "create_journey",
    "enrol_from_events",
    "enrol_scheduled",
    "get_journey",
    "journey_stats",
    "list_journeys",
    "may_manage",
    "run_journeys",
    "set_status",
    "update_journey",
    "watch_traits",
]
