"""Email: the MIME message Threadline sends, and handing it to the configured SMTP relay (smtplib).

Every email is UTF-8 text with an HTML alternative, carries a Message-ID Threadline keeps, and a
List-Unsubscribe header with RFC 8058's one-click POST, so mail clients show their own unsubscribe
button. Marketing and personalisation emails also carry the link at the foot of both bodies.

The relay's answer is sorted by what it means for a retry (outbox.py decides what to do):
- `Deferred`: the relay did not take the message and may later (no connection, a 4xx reply, a failed
  login). Nothing went out, so trying again cannot send it twice.
- `Rejected`: the relay refused it for good (a 5xx reply: no such mailbox, a refused sender).
- `Uncertain`: the connection broke while the message itself was being handed over; the relay may have
  taken it. At most once: it is not tried again (docs/messaging.md).
"""

from __future__ import annotations

import html
import smtplib
import ssl
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid, parseaddr

from threadline.config import Settings

SMTP_TIMEOUT = 30.0  # seconds per relay operation; well inside a job's lease, so a slow relay is no takeover
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058
FOOTER_PURPOSES = frozenset({"marketing", "personalisation"})  # the link at the foot of the bodies too


class RelayError(Exception):
    """The relay did not confirm the message; the subclass says whether it may have gone out."""


class Deferred(RelayError):
    """Not taken, may be later: safe to try again."""


class Rejected(RelayError):
    """Refused for good."""


class Uncertain(RelayError):
    """The connection broke during the hand-over: the relay may have taken it."""


@dataclass(frozen=True, slots=True)
class Email:
    to_address: str
    subject: str
    body_text: str
    body_html: str | None
    purpose: str
    message_id_header: str
    unsubscribe_url: str
    headers: dict[str, str] = field(default_factory=dict)  # In-Reply-To, References (outbox.py checks)


def new_message_id(settings: Settings) -> str:
    """A Message-ID in the From address's domain (where mailbox providers expect it)."""
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "threadline.invalid"
    return make_msgid("threadline", domain=domain)


def html_from_text(text: str) -> str:
    """The HTML part of an email written as text only (tracking adds its image to it too)."""
    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()]
    inner = "\n".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return f'<!doctype html>\n<html><head><meta charset="utf-8"></head><body>\n{inner}\n</body></html>\n'


def _with_html_footer(body: str, url: str) -> str:
    link = html.escape(url, quote=True)
    footer = (
        '<p style="font-size:12px;color:#666">'
        f'No longer want these emails? <a href="{link}">Unsubscribe</a>.</p>\n'
    )
    at = body.lower().rfind("</body>")
    return body + footer if at < 0 else body[:at] + footer + body[at:]


def build_email(settings: Settings, email: Email, *, now: datetime) -> EmailMessage:
    """The MIME message: text and HTML alternative in UTF-8, Message-ID, List-Unsubscribe (RFC 8058)."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now.replace(tzinfo=UTC))
    message["Message-ID"] = email.message_id_header
    message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = ONE_CLICK
    for name, value in email.headers.items():
        message[name] = value
    text, body_html = email.body_text, email.body_html or html_from_text(email.body_text)
    if email.purpose in FOOTER_PURPOSES:
        text = f"{text.rstrip()}\n\n--\nNo longer want these emails? Unsubscribe: {email.unsubscribe_url}\n"
        body_html = _with_html_footer(body_html, email.unsubscribe_url)
    message.set_content(text, charset="utf-8")
    message.add_alternative(body_html, subtype="html", charset="utf-8")
    return message


def _refusal(code: int, reply: bytes | str, what: str) -> RelayError:
    said = (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply)[:200]
    if 400 <= code < 500:
        return Deferred(f"the relay deferred the {what}: {code} {said}")
    return Rejected(f"the relay refused the {what}: {code} {said}")


def hand_over(settings: Settings, message: EmailMessage) -> None:
    """Give `message` to the relay, step by step so that a failure says whether it may have gone out;
    raises Deferred, Rejected or Uncertain. Returns once the relay has accepted it (250 after DATA)."""
    sender = parseaddr(settings.mail_from)[1]
    recipient = str(message["To"])
    data = message.as_bytes(policy=SMTP_POLICY)
    handing_over = False
    try:
        relay = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT)
    except (OSError, smtplib.SMTPException) as error:
        raise Deferred(
            f"could not reach the relay {settings.smtp_host}:{settings.smtp_port} ({type(error).__name__})"
        ) from None
    try:
        relay.ehlo()
        if settings.smtp_starttls:
            relay.starttls(context=ssl.create_default_context())
            relay.ehlo()
        if settings.smtp_username:
            relay.login(settings.smtp_username, settings.smtp_password)
        options: list[str] = []
        if not (sender + recipient).isascii():  # an internationalised address needs SMTPUTF8 (RFC 6531)
            if not relay.has_extn("smtputf8"):
                raise Rejected("the relay cannot take a non-ASCII address (no SMTPUTF8)")
            options.append("SMTPUTF8")
        code, reply = relay.mail(sender, options)
        if code != 250:
            raise _refusal(code, reply, "sender")
        code, reply = relay.rcpt(recipient)
        if code not in (250, 251):
            raise _refusal(code, reply, "recipient")
        handing_over = True
        code, reply = relay.data(data)
        if code != 250:
            raise _refusal(code, reply, "message")
    except RelayError:
        relay.close()
        raise
    except smtplib.SMTPDataError as error:
        # DATA itself was answered with an error, before any of the message went: nothing was taken.
        relay.close()
        raise _refusal(error.smtp_code, error.smtp_error, "message") from None
    except smtplib.SMTPAuthenticationError as error:
        relay.close()
        raise Deferred(f"the relay refused the login: {error.smtp_code}") from None
    except (OSError, smtplib.SMTPException) as error:
        relay.close()
        if handing_over:
            raise Uncertain(
                f"the connection broke while handing the message over ({type(error).__name__})"
            ) from None
        raise Deferred(f"the relay conversation failed ({type(error).__name__}: {error})") from None
    # Accepted: a failure to say goodbye changes nothing.
    with suppress(OSError, smtplib.SMTPException):
        relay.quit()
    relay.close()
