"""One customer's past ~180 days, written as the Segment Spec messages each channel would have sent.

Each channel identifies the customer the way it really can: the website by a browser's anonymousId
until sign-up, the app by its install and device, the store by phone and/or e-mail at the till, the
call center by the caller's number, e-mail and SMS by address and number, social by a WeChat openid or a
handle. Only the overlaps between them make one profile of it all.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Any

from threadline.demo.catalog import CATALOGS, Product
from threadline.demo.personas import Customer, Person

# (source name, channel), in the order buffered messages are sent (see threadline.demo.load): the
# channels that know the most about a person go first, so later ones attach instead of merging.
SOURCES = (
    ("website", "web"),
    ("mobile-app", "app"),
    ("store-pos", "store"),
    ("email", "email"),
    ("chat", "chat"),
    ("call-center", "call_center"),
    ("sms", "sms"),
    ("social", "social"),
)
_USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
)


def message_id(seed: int, locale: str, index: int, step: int) -> str:
    """Stable per (seed, locale, customer, step): a second run is all duplicates and stores nothing."""
    digest = hashlib.blake2b(f"{seed}\x00{locale}\x00{index}\x00{step}".encode(), digest_size=12)
    return f"demo-{digest.hexdigest()}"


def dialled(phone: str, style: int) -> str:
    """An E.164 number as one channel or another writes it; normalisation must make them one."""
    if phone.startswith("+86"):
        d = phone[3:]
        styles = (phone, f"+86 {d[:3]} {d[3:7]} {d[7:]}", f"+86-{d[:3]}-{d[3:7]}-{d[7:]}")
    else:
        d = phone[2:]
        styles = (phone, f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}", f"+1 {d[:3]}-{d[3:6]}-{d[6:]}")
    return styles[style % len(styles)]


class History:
    """Collects `messages` (source name, message) and the `identifiers` they carry, in canonical form.

    The chapters that write them, one per channel, are in threadline.demo.channels.
    """

    def __init__(self, customer: Customer, *, seed: int, locale: str, now: datetime) -> None:
        self.customer = customer
        self.seed = seed
        self.locale = locale
        self.catalog = CATALOGS[locale]
        self.rng = random.Random(f"history:{seed}:{locale}:{customer.index}")
        self.start = now - timedelta(days=self.rng.uniform(20, 180))
        self.end = now - timedelta(hours=self.rng.uniform(2, 240))
        self.latest = now - timedelta(minutes=1)
        self.user_agent = self.rng.choice(_USER_AGENTS)
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.identifiers: set[tuple[str, str]] = set()
        self._steps = 0

    # -- plumbing ------------------------------------------------------------------------------
    def when(self, low: float, high: float) -> datetime:
        """A moment between `low` and `high`, as fractions of this customer's time with us."""
        return self.start + (self.end - self.start) * self.rng.uniform(low, high)

    def later(self, at: datetime, low: float = 15, high: float = 180) -> datetime:
        return at + timedelta(seconds=self.rng.uniform(low, high))

    def send(self, source: str, at: datetime, message: dict[str, Any]) -> None:
        self._steps += 1
        message["messageId"] = message_id(self.seed, self.locale, self.customer.index, self._steps)
        stamp = min(at, self.latest).isoformat(timespec="milliseconds")
        message["timestamp"] = f"{stamp}Z"
        self.messages.append((source, message))

    def track(
        self,
        source: str,
        at: datetime,
        event: str,
        ids: dict[str, str],
        properties: dict[str, Any],
        context: dict[str, Any] | None = None,
    ) -> None:
        message: dict[str, Any] = {"type": "track", "event": event, **ids, "properties": properties}
        if context:
            message["context"] = context
        self.send(source, at, message)

    def between(self, earliest: datetime, latest: datetime) -> datetime:
        return earliest + (latest - earliest) * self.rng.uniform(0, 1)

    def web_context(self, path: str, title: str) -> dict[str, Any]:
        page = {"path": path, "url": f"{self.catalog.site}{path}", "title": title}
        return {"page": page, "userAgent": self.user_agent, "locale": self.catalog.language}

    def known(self, kind: str, value: str) -> str:
        self.identifiers.add((kind, value))
        return value

    def phone(self, person: Person, style: int) -> str:
        self.known("phone", person.phone)
        return dialled(person.phone, style)

    def email(self, person: Person) -> str:
        return self.known("email", person.email)

    def traits(self, person: Person, *, with_phone: bool = True) -> dict[str, Any]:
        traits: dict[str, Any] = {
            "email": self.email(person),
            "name": person.name,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "birthday": person.birthday,
            "address": dict(person.address),
        }
        if with_phone:
            traits["phone"] = self.phone(person, 0)
        return traits

    def products(self, count: int) -> list[Product]:
        return self.rng.sample(self.catalog.products, count)

    def order(self, prefix: str, items: list[Product]) -> dict[str, Any]:
        lines = [{**product_properties(p), "quantity": self.rng.choice((1, 1, 1, 2))} for p in items]
        total = round(sum(p.price * line["quantity"] for p, line in zip(items, lines, strict=True)), 2)
        order_id = f"{prefix}-{self.rng.randrange(10**9, 10**10)}"
        return {"order_id": order_id, "products": lines, "total": total, "currency": self.catalog.currency}


def product_properties(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.sku,
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "price": product.price,
    }
