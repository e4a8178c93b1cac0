"""SMS, WhatsApp, WeChat and social messages: a signed JSON POST to the channel's provider webhook.

Threadline does not speak each provider's API; it POSTs one documented payload to a configured URL
(the provider's, or a small adapter in front of it), signed like the inbound webhooks are, so one
adapter can verify both directions the same way (docs/messaging.md, "Other channels"):

    POST {THREADLINE_<CHANNEL>_WEBHOOK_URL}
    Content-Type: application/json
    X-Threadline-Timestamp: <Unix seconds>
    X-Threadline-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}", key PROVIDER_WEBHOOK_SECRET>
    {"to": "+8613800138000", "text": "...", "channel": "sms", "message_id": "threadline-42"}

The answer is sorted like the SMTP relay's (mail.py), by what a retry would risk:
- `Deferred`: nothing reached the provider (no connection: refused, unknown host, connect timeout), or
  it answered 429 / 408 (not taken, ask again later). Safe to try again.
- `Rejected`: any other 4xx: the provider read the request and refused it for good.
- `Uncertain`: a 5xx, or the connection broke or timed out after the request was sent: the provider
  may have sent the message. At most once: not tried again.

http.client rather than urllib.request: the split between "could not connect" and "sent, then lost"
is the whole point, and urlopen folds both into one URLError.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from threadline.config import Settings
from threadline.messaging.mail import Deferred, Rejected, Uncertain

PROVIDER_CHANNELS = ("sms", "whatsapp", "wechat", "social")
SIGNATURE_HEADER = "X-Threadline-Signature"
TIMESTAMP_HEADER = "X-Threadline-Timestamp"
PROVIDER_TIMEOUT = 30.0  # seconds per request; well inside a job's lease, like SMTP_TIMEOUT
RETRY_LATER = frozenset({408, 429})


# A marketing text on these channels ends with how to opt out (carriers and WhatsApp require it): a
# keyword reply, which the inbound webhook turns into a withdrawal of marketing consent
# (threadline.service.opt_out). A keyword rather than a link: it works on any phone, costs a dozen
# characters, and a link in a text looks like phishing to carriers' filters.
OPT_OUT_CHANNELS = ("sms", "whatsapp")
OPT_OUT_FOOTER = {"en": "Reply STOP to opt out", "zh": "回复退订不再接收"}
_HAN = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True, slots=True)
class ProviderMessage:
    channel: str
    to_address: str
    text: str
    message_id: str  # "threadline-{id}": stable across attempts, so a provider can drop a duplicate
    purpose: str = "service"


def opt_out_footer(text: str) -> str:
    """The footer in the message's language: Chinese for a text with Han characters."""
    return OPT_OUT_FOOTER["zh" if _HAN.search(text) else "en"]


def text_to_send(message: ProviderMessage) -> str:
    """The text as it goes out: a marketing SMS or WhatsApp message gets the opt-out footer (once);
    service messages (replies, surveys) get none."""
    if message.purpose != "marketing" or message.channel not in OPT_OUT_CHANNELS:
        return message.text
    footer = opt_out_footer(message.text)
    if message.text.rstrip().endswith(footer):
        return message.text
    return f"{message.text.rstrip()}\n{footer}"


def webhook_url(settings: Settings, channel: str) -> str:
    """The channel's provider URL; empty when sending on it is disabled."""
    return str(getattr(settings, f"{channel}_webhook_url", "") or "")


def disabled_reason(channel: str) -> str:
    return (
        f"sending is disabled (THREADLINE_{channel.upper()}_WEBHOOK_URL is not set): "
        "the message waits in the queue"
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: the same scheme as the inbound webhooks (docs/service.md)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def payload(message: ProviderMessage) -> bytes:
    document = {
        "to": message.to_address,
        "text": text_to_send(message),
        "channel": message.channel,
        "message_id": message.message_id,
    }
    return json.dumps(document, ensure_ascii=False).encode()


def post_message(settings: Settings, message: ProviderMessage, *, timestamp: int | None = None) -> None:
    """POST `message` to its channel's provider; returns on a 2xx, raises Deferred, Rejected or
    Uncertain otherwise."""
    url = urlsplit(webhook_url(settings, message.channel))
    body = payload(message)
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(settings.provider_webhook_secret, stamp, body),
        "User-Agent": "Threadline",
    }
    where = f"{url.hostname}:{url.port or ''}".rstrip(":")
    connection: http.client.HTTPConnection
    if url.scheme == "https":
        connection = http.client.HTTPSConnection(
            url.hostname or "", url.port, timeout=PROVIDER_TIMEOUT, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=PROVIDER_TIMEOUT)
    try:
        try:
            connection.connect()
        except OSError as error:
            raise Deferred(f"could not reach the provider {where} ({type(error).__name__})") from None
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            said = response.read(200).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as error:
            raise Uncertain(
                f"the connection to the provider broke after the message was sent ({type(error).__name__})"
            ) from None
    finally:
        connection.close()
    status = response.status
    if 200 <= status < 300:
        return
    if status in RETRY_LATER:
        raise Deferred(f"the provider deferred the message: {status} {said}")
    if status >= 500:
        raise Uncertain(f"the provider failed on the message: {status} {said} (it may have gone out)")
    raise Rejected(f"the provider refused the message: {status} {said}")
