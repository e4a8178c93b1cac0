"""Chapters where staff, not software, identify the customer: at the till and on the phone.

Also the fuzzy twin: the same human signing up again at a store, sharing no identifier with the first
record, for fuzzy identity resolution to find.
"""

from __future__ import annotations

from datetime import datetime

from threadline.demo.catalog import CALL_REASONS
from threadline.demo.histories import History
from threadline.demo.personas import Person


def _store_order(h: History, at: datetime, till: dict[str, str], store: int) -> None:
    store_id, store_name = h.catalog.stores[store]
    order = h.order("POS", h.products(h.rng.randint(1, 3)))
    order.update(store_id=store_id, store_name=store_name, payment_method=h.rng.choice(h.catalog.payments))
    h.track("store-pos", at, "Order Completed", {}, order, {"traits": till})


def _loyalty_signup(h: History, at: datetime, person: Person) -> None:
    loyalty_id = h.known("loyalty_id", f"TL{h.rng.randrange(10**9, 10**10)}")
    traits = {**h.traits(person, with_phone=False), "phone": h.phone(person, 1), "loyalty_id": loyalty_id}
    h.send("store-pos", at, {"type": "identify", "traits": traits})


def store(h: History, signup: datetime) -> None:
    c, rng = h.customer, h.rng
    visits = [h.when(0.36, 1) for _ in range(rng.randint(1, 4))]
    if c.signs_up_on is None:
        visits[0] = h.when(0, 0.3)  # they join the loyalty programme before anyone calls them
    for visit, at in enumerate(sorted(visits)):
        if visit == 0:
            # Phone and e-mail together once: that is what ties the till, and later the calls that
            # only know the phone, to the account the customer opened online.
            if c.signs_up_on is None:
                _loyalty_signup(h, at, c.person)
            till = {"phone": h.phone(c.person, 1), "email": h.email(c.person)}
        else:
            roll = rng.random()
            till = {"phone": h.phone(c.person, 1)} if roll < 0.6 else {"email": h.email(c.person)}
            if roll > 0.85:
                till["phone"] = h.phone(c.person, 1)
        _store_order(h, h.later(at, 60, 900), till, c.store)


def call_center(h: History, signup: datetime) -> None:
    c, rng = h.customer, h.rng
    for _ in range(rng.randint(1, 3)):
        inbound = rng.random() < 0.85
        reason = rng.choice(CALL_REASONS)
        properties = {
            "direction": "inbound" if inbound else "outbound",
            "duration_seconds": rng.randint(45, 1500),
            "reason": reason,
            "queue": reason if inbound else "outreach",
            "resolved": rng.random() < 0.8,
        }
        call = {"traits": {"phone": h.phone(c.person, 2)}}
        h.track("call-center", h.when(0.36, 1), "Call Completed", {}, properties, call)


def twin(h: History, person: Person) -> None:
    """The same human signs up again at a store, under a name variant, with a new e-mail and phone."""
    c, rng = h.customer, h.rng
    at = h.when(0.2, 1)
    _loyalty_signup(h, at, person)
    shop = c.store if rng.random() < 0.5 else (c.store + 1) % len(h.catalog.stores)
    _store_order(h, h.later(at, 60, 900), {"phone": h.phone(person, 1)}, shop)
    if rng.random() < 0.5:
        properties = {
            "direction": "inbound",
            "duration_seconds": rng.randint(60, 900),
            "reason": "loyalty",
            "queue": "loyalty",
            "resolved": True,
        }
        h.track(
            "call-center",
            h.when(0.2, 1),
            "Call Completed",
            {},
            properties,
            {"traits": {"phone": h.phone(person, 2)}},
        )
