"""Destinations: webhooks that receive the customer events Threadline stores and segment membership
changes, signed, retried with backoff and dead-lettered (docs/destinations.md).

Ingestion calls `forward_events` and segment membership `forward_segment_changes` inside their own
transactions; they only queue delivery rows and a `destinations.deliver` job, which the worker runs
(`deliver`). Admins manage destinations through the catalog functions (api/destinations.py,
web/destination_pages.py).
"""

from threadline.destinations.catalog import (
    DEAD,
    DELIVERED,
    DELIVERY_STATUSES,
    EVENT_TYPES,
    FAILED,
    PENDING,
    SEGMENT_CHANGES,
    SENDING,
    DeliveryStats,
    DeliveryView,
    DestinationNotFound,
    DestinationView,
    Filters,
    create_destination,
    delete_destination,
    get_destination,
    list_destinations,
    recent_deliveries,
    update_destination,
)
from threadline.destinations.delivery import (
    DELIVERY_HEADER,
    RETRY_DELAYS,
    TEST_EVENT,
    deliver,
    resume_pending,
    retry_dead_letters,
    send_test_event,
)
from threadline.destinations.forwarding import (
    JOB_KIND,
    forward_events,
    forward_segment_changes,
    send_to_destination,
)

__all__ = [
    "DEAD",
    "DELIVERED",
    "DELIVERY_HEADER",
    "DELIVERY_STATUSES",
    "EVENT_TYPES",
    "FAILED",
    "JOB_KIND",
    "PENDING",
    "RETRY_DELAYS",
    "SEGMENT_CHANGES",
    "SENDING",
    "TEST_EVENT",
    "DeliveryStats",
    "DeliveryView",
    "DestinationNotFound",
    "DestinationView",
    "Filters",
    "create_destination",
    "delete_destination",
    "deliver",
    "forward_events",
    "forward_segment_changes",
    "get_destination",
    "list_destinations",
    "recent_deliveries",
    "resume_pending",
    "retry_dead_letters",
    "send_test_event",
    "send_to_destination",
    "update_destination",
]
