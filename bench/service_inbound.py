"""Inbound service messages per second into conversations: email over SMTP and signed webhooks over HTTP.

    .venv/bin/python bench/service_inbound.py [--database sqlite|postgresql|both] [--emails 2000]
        [--webhooks 2000] [--senders 400] [--concurrency 4]

Per database, on a fresh migrated database:
1. Floor for email: `threadline.ingest.ingest` of `--emails` track events, one call per event (an
   inbound email is one message, committed before it is acknowledged), from the same senders, in process.
2. Email: the inbound SMTP server (`threadline.service.InboundMailServer`, aiosmtpd) started in this
   process as `threadline serve` starts it; ONE smtplib connection sends `--emails` messages from
   `--senders` senders; every other message of a sender is a reply (In-Reply-To / References to its
   previous one), so threading is exercised. The server answers 250 only once the message is stored.
3. Floor for HTTP: `GET /healthz` (one `SELECT 1`) with the same concurrency against the same server.
4. Webhooks: `--webhooks` signed SMS payloads (HMAC-SHA256, the source's write key) POSTed to
   `/webhooks/{source}` by `--concurrency` asyncio+httpx clients against ONE `threadline serve
   --no-worker` process, from `--senders` phone numbers.
Afterwards the conversations and messages stored are counted, so a fast wrong run cannot pass as a result.
No goal is set by the issue; the figures are what the machine does, beside their floors.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage

import httpx
import orjson
from sqlalchemy import func, select

import common
from threadline.clock import utcnow
from threadline.ingest import create_source, ingest
from threadline.service import InboundMailServer
from threadline.storage import Database
from threadline.storage.models import Conversation, ConversationMessage

SUPPORT = "support@shop.example"


@dataclass(frozen=True, slots=True)
class Rate:
    what: str
    count: int
    seconds: float
    errors: int = 0

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def sender_email(index: int) -> str:
    return f"customer{index}@example.com"


def sender_phone(index: int) -> str:
    return f"+86138{index:08d}"  # valid Chinese mobile numbers, distinct per sender


def emails(count: int, senders: int) -> list[EmailMessage]:
    """`count` messages from `senders` senders; a sender's every other message replies to its last."""
    last: dict[int, str] = {}
    out = []
    for i in range(count):
        who = i % senders
        message = EmailMessage()
        message["From"] = sender_email(who)
        message["To"] = SUPPORT
        message["Message-ID"] = f"<bench-{i}@example.com>"
        previous = last.get(who)
        if previous is not None and (i // senders) % 2 == 1:
            message["Subject"] = f"Re: Order {who}"
            message["In-Reply-To"] = previous
            message["References"] = previous
        else:
            message["Subject"] = f"Order {who}"
        message.set_content(f"Hello, about my order {who}: where is it? ({i})\n")
        last[who] = str(message["Message-ID"])
        out.append(message)
    return out


def ingest_floor(db: Database, settings: common.Settings, count: int, senders: int) -> Rate:
    source = create_source(db, "bench-floor", "email", now=utcnow())
    events = [
        {
            "type": "track",
            "event": "Email Received",
            "userId": sender_email(i % senders),
            "messageId": f"floor-{i}",
            "properties": {"subject": f"Order {i % senders}", "text": f"where is my order? ({i})"},
        }
        for i in range(count)
    ]
    start = time.perf_counter()
    for event in events:
        ingest(db, source, [event], settings=settings, received_at=utcnow())
    return Rate("`ingest()` 1 event per call (floor)", count, time.perf_counter() - start)


def email_rate(db: Database, settings: common.Settings, count: int, senders: int) -> Rate:
    messages = emails(count, senders)
    with InboundMailServer(db, settings, host="127.0.0.1", port=common.free_port()) as server:
        start = time.perf_counter()
        with smtplib.SMTP(server.host, server.port, timeout=60) as client:
            for message in messages:
                client.send_message(message, to_addrs=[SUPPORT])
        seconds = time.perf_counter() - start
    return Rate("inbound email, smtplib -> aiosmtpd -> conversation", count, seconds)


def sign(secret: str, stamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


async def _drive(url: str, bodies: list[bytes] | int, secret: str, concurrency: int) -> Rate:
    """POST each body signed (or GET /healthz `bodies` times), `concurrency` requests in flight."""
    count = bodies if isinstance(bodies, int) else len(bodies)
    queue = iter(range(count))
    errors = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in queue:
            if isinstance(bodies, int):
                response = await client.get(f"{url}/healthz")
                ok = response.status_code == 200
            else:
                stamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    "X-Threadline-Timestamp": stamp,
                    "X-Threadline-Signature": sign(secret, stamp, bodies[i]),
                }
                response = await client.post(f"{url}/webhooks/bench-sms", content=bodies[i], headers=headers)
                ok = response.status_code == 201
            errors += 0 if ok else 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    what = "`GET /healthz` (floor)" if isinstance(bodies, int) else "signed `POST /webhooks/{source}` (SMS)"
    return Rate(what, count, seconds, errors)


def webhook_rates(backend: common.Backend, secret: str, options: argparse.Namespace) -> list[Rate]:
    bodies = [
        orjson.dumps(
            {
                "channel": "sms",
                "from": sender_phone(i % options.senders),
                "to": "+862150001000",
                "text": f"我的订单发货了吗？ ({i})",
                "message_id": f"SM{i}",
            }
        )
        for i in range(options.webhooks)
    ]
    with common.server(backend.url, cli=True) as running:
        floor = asyncio.run(_drive(running.url, max(options.webhooks, 2000), secret, options.concurrency))
        posted = asyncio.run(_drive(running.url, bodies, secret, options.concurrency))
    return [floor, posted]


def stored(db: Database) -> tuple[int, int]:
    with db.read() as session:
        conversations = session.scalar(select(func.count()).select_from(Conversation)) or 0
        messages = session.scalar(select(func.count()).select_from(ConversationMessage)) or 0
        return int(conversations), int(messages)


def run_one(backend: common.Backend, options: argparse.Namespace) -> str:
    common.fresh_database(backend)
    settings = common.settings_for(backend.url).model_copy(update={"inbound_addresses": [SUPPORT]})
    db = Database(backend.url)
    try:
        floor = ingest_floor(db, settings, options.emails, options.senders)
        print(f"{backend.name}: {floor.what}: {floor.per_second:,.0f}/s", flush=True)
        mail = email_rate(db, settings, options.emails, options.senders)
        print(f"{backend.name}: {mail.what}: {mail.per_second:,.0f}/s", flush=True)
        after_mail = stored(db)
        secret = create_source(db, "bench-sms", "sms", now=utcnow()).write_key
    finally:
        db.dispose()
    health, hooks = webhook_rates(backend, secret, options)
    print(f"{backend.name}: {hooks.what}: {hooks.per_second:,.0f}/s ({hooks.errors} errors)", flush=True)
    db = Database(backend.url)
    try:
        after_all = stored(db)
    finally:
        db.dispose()
    rows = [
        (
            rate.what,
            f"{rate.count:,}",
            f"{rate.seconds:.1f}",
            common.rate(rate.per_second),
            f"{rate.per_second / base.per_second:.0%}" if base is not rate else "floor",
            str(rate.errors),
        )
        for rate, base in ((floor, floor), (mail, floor), (health, health), (hooks, health))
    ]
    table = common.table(["what", "messages", "seconds", "per second", "of floor", "errors"], rows)
    hook_conversations = after_all[0] - after_mail[0]
    return (
        f"### Inbound service messages into conversations: {backend.name}\n\n"
        f"{common.machine_facts([backend])}\n\n"
        f"{options.emails:,} emails and {options.webhooks:,} webhooks from {options.senders:,} senders "
        f"each; every other email of a sender replies to its previous one (In-Reply-To/References); "
        f"HTTP with {options.concurrency} concurrent clients against ONE `threadline serve --no-worker`. "
        f"`bench/service_inbound.py`.\n\n{table}\n\n"
        f"Stored: {after_mail[0]:,} email conversations with {after_mail[1]:,} messages; "
        f"{hook_conversations:,} SMS conversations with {after_all[1] - after_mail[1]:,} messages. "
        f"Peak RSS of this process (client, SMTP server, floors): {common.peak_rss_mb():,.0f} MB.\n"
    )


def main() -> None:
    args = common.parser(__doc__ or "")
    args.add_argument("--emails", type=int, default=2_000)
    args.add_argument("--webhooks", type=int, default=2_000)
    args.add_argument("--senders", type=int, default=400)
    args.add_argument("--concurrency", type=int, default=4)
    options = args.parse_args()
    for backend in common.backends(options, "service_inbound"):
        text = run_one(backend, options)
        print(text)
        if not options.no_results:
            common.write_section(f"service_inbound:{backend.name}", text)


if __name__ == "__main__":
    main()
