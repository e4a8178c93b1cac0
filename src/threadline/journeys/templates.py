"""Ready-made journeys: JSON definitions a team instantiates and then adjusts (docs/journeys.md).

Emails quote the trigger event's properties as `event` (the Segment Spec's `products` of a "Checkout
Started") beside the customer's `traits`; `| default(...)` keeps a message sendable without them.
"""

from __future__ import annotations

from typing import Any

_CART_TEXT = (
    "Hello {{ traits.first_name | default('there') }},\n\n"
    "You left these in your cart:\n"
    "{% for product in event.products | default([]) %}"
    "- {{ product.name }} x {{ product.quantity | default(1) }}\n"
    "{% endfor %}\nThey are still waiting for you.\n"
)

TEMPLATES: dict[str, dict[str, Any]] = {
    "abandoned_cart": {
        "name": "Abandoned cart",
        "trigger": {"type": "event", "event": "Checkout Started"},
        "steps": [
            {"key": "wait-1h", "type": "wait", "hours": 1},
            {
                "key": "cart-email",
                "type": "send_email",
                "subject": "You left something in your cart",
                "body_text": _CART_TEXT,
            },
        ],
        "exit_goal": {"event": "Order Completed"},
        "reentry": "every",
        "reentry_days": 1,
        "purpose": "marketing",
    },
    "whitepaper_follow_up": {
        "name": "Whitepaper follow-up",
        "trigger": {"type": "event", "event": "Whitepaper Downloaded"},
        "steps": [
            {"key": "wait-7d", "type": "wait", "days": 7},
            {
                "key": "owner-task",
                "type": "create_task",
                "title": "Follow up on the whitepaper download",
                "due_days": 1,
            },
        ],
        "exit_goal": None,
        "reentry": "every",
        "reentry_days": 30,
        "purpose": "service",
    },
    "welcome_series": {
        "name": "Welcome series",
        "trigger": {"type": "event", "event": "Signed Up"},
        "steps": [
            {
                "key": "welcome",
                "type": "send_email",
                "subject": "Welcome, {{ traits.first_name | default('friend') }}",
                "body_text": "Thank you for joining us.\n",
            },
            {"key": "wait-3d", "type": "wait", "days": 3},
            {
                "key": "getting-started",
                "type": "send_email",
                "subject": "Getting the most out of your account",
                "body_text": "Here is how other customers get started.\n",
            },
        ],
        "exit_goal": None,
        "reentry": "once",
        "purpose": "marketing",
    },
    "win_back": {
        "name": "Win-back after 90 days",
        "trigger": {"type": "schedule", "at_hour": 9},
        "steps": [
            {
                "key": "lapsed",
                "type": "branch",
                "condition": {"days_since_event": "Order Completed", "op": "gte", "value": 90},
                "else": "end",
            },
            {
                "key": "win-back-email",
                "type": "send_email",
                "subject": "We miss you",
                "body_text": "It has been a while. Here is something to welcome you back.\n",
            },
        ],
        "exit_goal": {"event": "Order Completed"},
        "reentry": "every",
        "reentry_days": 90,
        "purpose": "marketing",
    },
    "birthday_offer": {
        "name": "Birthday offer",
        # At 9 in the morning of the customer's birthday, in their own time zone (anniversaries.py).
        "trigger": {"type": "date", "trait": "birthday", "at_hour": 9, "offset_days": 0},
        "steps": [
            {
                "key": "birthday-email",
                "type": "send_email",
                "subject": "Happy birthday, {{ traits.first_name | default('friend') }}",
                "body_text": "A small gift from us for your birthday.\n",
            },
        ],
        "exit_goal": None,
        "reentry": "every",
        "reentry_days": 300,
        "purpose": "marketing",
    },
    "review_request": {
        "name": "Post-purchase review request",
        "trigger": {"type": "event", "event": "Order Completed"},
        "steps": [
            {"key": "wait-10d", "type": "wait", "days": 10},
            {
                "key": "review-email",
                "type": "send_email",
                "subject": "How do you like your order?",
                "body_text": "We would love to hear what you think of it.\n",
            },
        ],
        "exit_goal": {"event": "Product Reviewed"},
        "reentry": "every",
        "reentry_days": 30,
        "purpose": "marketing",
    },
}
