"""What the dashboards count: which events are orders, emails, app opens and messages, and an order's value.

Shared by the live queries (metrics.py) and the worker's daily rollups (rollups.py), so the two count the
same things. Names follow the Segment spec and the demo data; a source that names them differently shows
up once its names are added here (and the rollups rebuilt: `threadline analytics rollups --rebuild`).
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.sql.elements import ColumnElement

from threadline.analytics.expressions import json_number
from threadline.storage.models import Event

ORDER_EVENTS = ("Order Completed",)
EMAIL_SENT = ("Email Sent", "Email Delivered", "Email Received")
EMAIL_OPENED = ("Email Opened",)
EMAIL_CLICKED = ("Email Clicked", "Email Link Clicked")
APP_OPENED = ("Application Opened",)
MESSAGES = (
    "Message Sent",
    "Message Received",
    "Social Message Sent",
    "SMS Sent",
    "Chat Started",
    "Call Completed",
)


def revenue_of(dialect: str) -> ColumnElement[float]:
    """An order's value: properties.revenue, else properties.total, else 0 (numbers only)."""
    return func.coalesce(
        json_number(dialect, Event.properties, "revenue"),
        json_number(dialect, Event.properties, "total"),
        0.0,
    )
