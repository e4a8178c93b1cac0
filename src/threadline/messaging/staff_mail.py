"""Email to a colleague (a staff user), not to a customer: the sales digest, scheduled Insight reports.

Customers' messages go through `send_message`, which checks consent and lands on their timeline. Staff
are users, not customers: they have no consent ledger and no timeline, and their own work mail is not
marketing, so this sends directly through the same relay settings (only messaging talks SMTP:
tests/test_architecture.py). Nothing here may carry a customer as its recipient.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from threadline.config import Settings
from threadline.messaging.mail import hand_over, new_message_id


def send_staff_email(
    settings: Settings,
    *,
    to_address: str,
    subject: str,
    body_text: str,
    now: datetime,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> bool:
    """Send a plain-text email to a staff user, with (file name, MIME type, content) attachments; False
    when sending is off (no THREADLINE_SMTP_HOST). Raises the relay's errors (messaging's RelayError
    subclasses) so a job can retry."""
    if not settings.smtp_host:
        return False
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to_address
    message["Subject"] = subject
    message["Date"] = format_datetime(now.replace(tzinfo=UTC))
    message["Message-ID"] = new_message_id(settings)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a digest
    message.set_content(body_text, charset="utf-8")
    for filename, mime_type, content in attachments:
        maintype, _, subtype = mime_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    hand_over(settings, message)
    return True
