"""Deterministic Segment messages for N customers whose identifiers overlap the way real traffic does.

Each customer browses anonymously on one to three devices (one `anonymousId` each) and at some point
identifies (userId for most, email for most, phone for half), which links that device's anonymous
history to the known profile and, when a second device identifies later, merges the two profiles.
A small share of devices is shared between two customers (a family tablet), which sends two user ids
through one anonymous id and exercises merge protection. Properties are ~300-600 bytes of realistic
e-commerce payload. The same (seed, customers, events) always yields the same messages.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
FIRST_NAMES = (
    "Wei",
    "Ana",
    "Liam",
    "Sofia",
    "Kenji",
    "Amara",
    "Lucas",
    "Mei",
    "Omar",
    "Elena",
    "Noah",
    "Priya",
)
LAST_NAMES = ("Zhang", "Silva", "Murphy", "Rossi", "Sato", "Okafor", "Martin", "Chen", "Haddad", "Novak")
PRODUCTS = (
    ("SKU-1001", "Merino crew sweater", "Apparel/Knitwear", 89.0),
    ("SKU-2040", "Trail running shoe", "Footwear/Running", 129.5),
    ("SKU-3307", "Ceramic pour-over set", "Home/Kitchen", 45.0),
    ("SKU-4112", "Noise-cancelling headphones", "Electronics/Audio", 249.99),
    ("SKU-5120", "Linen duvet cover", "Home/Bedroom", 119.0),
    ("SKU-6003", "Insulated water bottle", "Outdoor/Hydration", 32.0),
)
PAGES = ("/", "/collections/new", "/products/merino-crew", "/cart", "/checkout", "/account", "/help/returns")
TRACK_EVENTS = ("Product Viewed", "Product Added", "Cart Viewed", "Checkout Started", "Order Completed")
CAMPAIGNS = ("spring_sale", "newsletter_w14", "retargeting", "brand_search", "")
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)


@dataclass(slots=True)
class Customer:
    index: int
    devices: list[str]
    user_id: str | None
    email: str | None
    phone: str | None
    first_name: str
    last_name: str
    identified: set[str] = field(default_factory=set)  # devices that have sent an identify


def make_customers(count: int, rng: random.Random) -> list[Customer]:
    customers = []
    for index in range(count):
        devices = [f"anon-{index:07d}-{d}" for d in range(rng.choice((1, 1, 1, 2, 2, 3)))]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        customers.append(
            Customer(
                index=index,
                devices=devices,
                user_id=f"user-{index:07d}" if rng.random() < 0.7 else None,
                email=f"{first}.{last}.{index}@example.com" if rng.random() < 0.85 else None,
                phone=f"+1 415 {index // 10000 % 1000:03d} {index % 10000:04d}"
                if rng.random() < 0.5
                else None,
                first_name=first,
                last_name=last,
            )
        )
    for customer in customers:  # ~0.5% of customers also use a device of someone else
        if count > 1 and rng.random() < 0.005:
            other = customers[rng.randrange(count)]
            if other is not customer:
                customer.devices.append(other.devices[0])
    return customers


def _context(rng: random.Random, device: str) -> dict[str, Any]:
    campaign = rng.choice(CAMPAIGNS)
    context: dict[str, Any] = {
        "library": {"name": "analytics.js", "version": "5.2.1"},
        "ip": f"203.0.113.{rng.randrange(1, 255)}",
        "locale": "en-US",
        "userAgent": USER_AGENT,
        "device": {"type": "browser", "id": device},
    }
    if campaign:
        context["campaign"] = {"name": campaign, "source": "google", "medium": "cpc"}
    return context


def _product_properties(rng: random.Random) -> dict[str, Any]:
    sku, name, category, price = rng.choice(PRODUCTS)
    quantity = rng.randrange(1, 4)
    return {
        "product_id": sku,
        "sku": sku,
        "name": name,
        "category": category,
        "brand": "Threadline Goods",
        "variant": rng.choice(("S", "M", "L", "XL", "one size")),
        "price": price,
        "quantity": quantity,
        "currency": "USD",
        "value": round(price * quantity, 2),
        "position": rng.randrange(1, 24),
        "url": f"https://shop.example.com/products/{sku.lower()}",
        "image_url": f"https://cdn.example.com/img/{sku.lower()}-{rng.randrange(1, 5)}.jpg",
        "coupon": rng.choice(("", "WELCOME10", "SPRING15")),
        "list_id": rng.choice(("home-recommended", "search-results", "category-grid", "cart-upsell")),
        "session_id": f"s-{rng.getrandbits(48):012x}",
    }


def _identify(rng: random.Random, customer: Customer, device: str) -> dict[str, Any]:
    traits: dict[str, Any] = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "plan": rng.choice(("free", "member", "gold")),
        "city": rng.choice(("Shanghai", "Lisbon", "Dublin", "Osaka", "Lagos", "Austin")),
        "marketing_opt_in": rng.random() < 0.6,
        "lifetime_value": round(rng.uniform(0, 2000), 2),
    }
    if customer.email:
        traits["email"] = customer.email
    if customer.phone:
        traits["phone"] = customer.phone
    customer.identified.add(device)
    message: dict[str, Any] = {"type": "identify", "anonymousId": device, "traits": traits}
    if customer.user_id:
        message["userId"] = customer.user_id
    return message


def _activity(rng: random.Random, customer: Customer, device: str) -> dict[str, Any]:
    message: dict[str, Any] = {"anonymousId": device}
    if device in customer.identified and customer.user_id:
        message["userId"] = customer.user_id
    if rng.random() < 0.35:
        path = rng.choice(PAGES)
        message.update(
            type="page",
            name=path.strip("/").split("/")[0] or "home",
            properties={
                "path": path,
                "url": f"https://shop.example.com{path}",
                "title": f"Threadline Goods | {path}",
                "referrer": "https://www.google.com/",
                "search": "",
                **_product_properties(rng),
            },
        )
    else:
        message.update(type="track", event=rng.choice(TRACK_EVENTS), properties=_product_properties(rng))
    return message


def message_for(rng: random.Random, customer: Customer, number: int, seed: int) -> dict[str, Any]:
    """One message for `customer`; `number` makes the messageId and the timestamp."""
    device = rng.choice(customer.devices)
    wants_identify = device not in customer.identified and (customer.user_id or customer.email)
    if wants_identify and rng.random() < 0.25:
        message = _identify(rng, customer, device)
    else:
        message = _activity(rng, customer, device)
    message["messageId"] = f"bench-{seed}-{number:09d}"
    message["timestamp"] = (EPOCH + timedelta(seconds=number * 3)).isoformat().replace("+00:00", "Z")
    message["context"] = _context(rng, device)
    return message


def messages(customers: int, events: int, seed: int = 42, start: int = 0) -> Iterator[dict[str, Any]]:
    """`events` messages over `customers` customers; `start` skips ahead (numbers stay unique)."""
    rng = random.Random(seed)
    people = make_customers(customers, rng)
    for number in range(events):
        message = message_for(rng, people[rng.randrange(customers)], number, seed)
        if number >= start:
            yield message


def batches(customers: int, events: int, size: int, seed: int = 42) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for message in messages(customers, events, seed):
        batch.append(message)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
