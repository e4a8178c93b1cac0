"""Messaging: the one way a message leaves Threadline for a customer.

`send_message` validates, renders the templates with the customer's traits, asks the consent check
(`threadline.privacy.check_send`), stores the message and queues a job that sends it (checking consent
again) through the SMTP relay, or for SMS, WhatsApp, WeChat and social messages as a signed POST to the
channel's provider webhook (providers.py). Every outcome lands on the customer's timeline. See
docs/messaging.md.
"""

from threadline.messaging.delivery import DeliveryDeferred, deliver_message
from threadline.messaging.mail import ONE_CLICK
from threadline.messaging.outbox import (
    CHANNELS,
    FAILED,
    JOB_KIND,
    ORIGINS,
    QUEUED,
    REFUSED,
    SENDING,
    SENDING_DISABLED,
    SENT,
    STATUSES,
    MessageView,
    delivery_log,
    send_decisions,
    send_message,
)
from threadline.messaging.providers import SIGNATURE_HEADER, TIMESTAMP_HEADER
from threadline.messaging.providers import sign as sign_webhook
from threadline.messaging.rendering import InvalidTemplate, render
from threadline.messaging.staff_mail import send_staff_email
from threadline.messaging.timeline import EVENT_NAMES, OPENED, SOURCE_NAME
from threadline.messaging.tracking import CLICKED, PIXEL_GIF, InvalidToken, record_hit

__all__ = [
    "CHANNELS",
    "CLICKED",
    "EVENT_NAMES",
    "FAILED",
    "JOB_KIND",
    "ONE_CLICK",
    "OPENED",
    "ORIGINS",
    "PIXEL_GIF",
    "QUEUED",
    "REFUSED",
    "SENDING",
    "SENDING_DISABLED",
    "SENT",
    "SIGNATURE_HEADER",
    "SOURCE_NAME",
    "STATUSES",
    "TIMESTAMP_HEADER",
    "DeliveryDeferred",
    "InvalidTemplate",
    "InvalidToken",
    "MessageView",
    "deliver_message",
    "delivery_log",
    "record_hit",
    "render",
    "send_decisions",
    "send_message",
    "send_staff_email",
    "sign_webhook",
]
