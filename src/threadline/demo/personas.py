"""Demo customers: who each one is (Faker, in the chosen locale) and which channels they use.

Every customer is drawn from generators seeded with (seed, locale, index), so customer 17 is the same
person whether the demo loads 20 customers or 20,000, and a second run sends the same messages.
"""

from __future__ import annotations

import random
import re
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from faker import Faker
from faker.providers.person.zh_CN import Provider as ChinesePeople

from threadline.demo.variants import (
    GIVEN_PINYIN,
    SURNAME_PINYIN,
    chinese_variant,
    english_variant,
    street_variant,
)

LOCALES = ("en_US", "zh_CN")
# Reserved for documentation (RFC 2606): demo addresses can never reach a real mailbox.
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
# One customer in 33 (about 3%) comes back under another name; index 11 so that even a small demo has one.
TWIN_EVERY, TWIN_AT = 33, 11

# Faker's surname frequencies, limited to the surnames whose pinyin we know.
ZH_SURNAMES = OrderedDict(
    (name, weight) for name, weight in ChinesePeople.last_names.items() if name in SURNAME_PINYIN
)

# kind -> (share of customers, chance that such a customer uses each channel)
KINDS: dict[str, tuple[float, dict[str, float]]] = {
    "omnichannel": (0.30, {"web": 1, "app": 0.6, "store": 1, "call_center": 0.8, "email": 1, "sms": 0.7,
                           "social": 0.5, "chat": 0.4}),
    "online": (0.25, {"web": 1, "app": 0.4, "store": 0.2, "call_center": 0.3, "email": 1, "sms": 0.3,
                      "social": 0.3, "chat": 0.6}),
    "app_first": (0.15, {"web": 0.5, "app": 1, "store": 0.5, "call_center": 0.3, "email": 0.8, "sms": 0.6,
                         "social": 0.5, "chat": 0.2}),
    "store_call": (0.20, {"store": 1, "call_center": 1}),  # never online: only the store and the phone
    "browser": (0.05, {"web": 1, "chat": 0.3}),  # never tells us who they are
    "subscriber": (0.05, {"web": 1, "email": 1}),  # left an e-mail for the newsletter, nothing more
}  # fmt: skip
_IDENTIFIED_KINDS = ("omnichannel", "online", "app_first", "store_call")


@dataclass(frozen=True, slots=True)
class Person:
    """What a record says about someone; a fuzzy twin is a second Person for the same human."""

    first_name: str
    last_name: str
    name: str
    email: str
    phone: str  # E.164; histories write it in several local styles
    birthday: str
    address: dict[str, str]


@dataclass(frozen=True, slots=True)
class Customer:
    index: int
    kind: str
    person: Person
    channels: frozenset[str]
    signs_up_on: str | None  # web | app | None (never creates an account)
    user_id: str
    web_id: str  # anonymousId of their browser
    app_id: str  # anonymousId of their app install
    device_id: str
    social_id: str  # WeChat openid (zh_CN) or a social handle (en_US)
    store: int  # index into the locale's stores
    twin: Person | None  # the same human, recorded again without a shared identifier


class Customers:
    """Draws customers one at a time; keeps e-mails and phones unique across the whole demo."""

    def __init__(self, seed: int, locale: str) -> None:
        self.seed = seed
        self.locale = locale
        self.fake = Faker(locale)
        self.emails: set[str] = set()
        self.phones: set[str] = set()

    def customer(self, index: int) -> Customer:
        key = f"{self.seed}:{self.locale}:{index}"
        self.fake.seed_instance(key)
        rng = random.Random(key)
        twin_wanted = index % TWIN_EVERY == TWIN_AT
        kinds = _IDENTIFIED_KINDS if twin_wanted else tuple(KINDS)
        kind = rng.choices(kinds, weights=[KINDS[k][0] for k in kinds])[0]
        channels = frozenset(channel for channel, chance in KINDS[kind][1].items() if rng.random() < chance)
        signs_up_on: str | None = None
        if kind in ("omnichannel", "online"):
            signs_up_on = "app" if "app" in channels and rng.random() < 0.3 else "web"
        elif kind == "app_first":
            signs_up_on = "app"
        person = self._person(rng)
        twin = self._twin(person, rng) if twin_wanted else None
        return Customer(
            index=index,
            kind=kind,
            person=person,
            channels=channels,
            signs_up_on=signs_up_on,
            user_id=f"usr_{rng.getrandbits(48):012x}",
            web_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            app_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            device_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper(),
            social_id=self._social_id(person, rng),
            store=rng.randrange(5),
            twin=twin,
        )

    # -- people --------------------------------------------------------------------------------
    def _person(self, rng: random.Random) -> Person:
        fake = self.fake
        if self.locale == "zh_CN":
            last = str(fake.random_element(ZH_SURNAMES))
            first = str(fake.first_name())
            name = f"{last}{first}"
            address = {"street": fake.street_address(), "city": fake.city(), "state": fake.province()}
            country = "CN"
        else:
            first, last = str(fake.first_name()), str(fake.last_name())
            name = f"{first} {last}"
            address = {"street": fake.street_address(), "city": fake.city(), "state": fake.state_abbr()}
            country = "US"
        address.update(postal_code=str(fake.postcode()), country=country)
        return Person(
            first_name=first,
            last_name=last,
            name=name,
            email=self._email(first, last, rng),
            phone=self._phone(rng),
            birthday=fake.date_of_birth(minimum_age=18, maximum_age=78).isoformat(),
            address=address,
        )

    def _twin(self, person: Person, rng: random.Random) -> Person:
        if self.locale == "zh_CN":
            first, last, name = chinese_variant(person.last_name, person.first_name, rng)
        else:
            first, last, name = english_variant(person.first_name, person.last_name, rng)
        address = dict(person.address)
        address["street"] = street_variant(address["street"], rng)
        return Person(
            first_name=first,
            last_name=last,
            name=name,
            email=self._email(first, last, rng),
            phone=self._phone(rng),
            birthday=person.birthday,
            address=address,
        )

    def _email(self, first: str, last: str, rng: random.Random) -> str:
        given, family = _ascii(first, GIVEN_PINYIN), _ascii(last, SURNAME_PINYIN)
        if self.locale == "zh_CN" and rng.random() < 0.2:
            local = str(rng.randrange(10_000_000, 3_000_000_000))  # a QQ number, as many people use
        else:
            pattern = rng.choice(("{f}.{l}", "{f}{l}{n}", "{f[0]}{l}{n}", "{l}.{f}{n}", "{f}_{l}"))
            local = pattern.format(f=given or "user", l=family or "mail", n=rng.randrange(1, 100))
        domain = rng.choice(EMAIL_DOMAINS)
        email = f"{local}@{domain}"
        while email in self.emails:
            email = f"{local}{rng.randrange(100, 10_000)}@{domain}"
        self.emails.add(email)
        return email

    def _phone(self, rng: random.Random) -> str:
        for attempt in range(100):
            if self.locale == "zh_CN":
                phone = f"+86{self.fake.phone_number()}"
            else:
                phone = _us_phone(rng, fictional=attempt < 50)
            if phone not in self.phones:
                self.phones.add(phone)
                return phone
        raise RuntimeError("could not draw a phone number no other demo customer has")

    def _social_id(self, person: Person, rng: random.Random) -> str:
        if self.locale == "zh_CN":
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
            return "o" + "".join(rng.choice(alphabet) for _ in range(27))  # the shape of a WeChat openid
        given, family = _ascii(person.first_name, GIVEN_PINYIN), _ascii(person.last_name, SURNAME_PINYIN)
        handle = f"{given}{family[:1]}{rng.randrange(1, 1000)}"
        return f"@{handle}"


def _ascii(name: str, table: dict[str, str]) -> str:
    """A name as it could appear in an e-mail address: pinyin for Chinese, letters and digits only."""
    spelled = "".join(table.get(char, char) for char in name)
    return re.sub(r"[^a-z0-9]", "", spelled.lower())


def _us_phone(rng: random.Random, *, fictional: bool) -> str:
    while True:
        area = rng.randrange(201, 990)
        if area % 100 != 11 and area // 10 % 10 != 9:  # no N11 service codes, no N9X
            break
    if fictional:
        # 555-0100..0199 is set aside for fiction in every area code: nobody real gets a demo SMS.
        return f"+1{area}55501{rng.randrange(100):02d}"
    return f"+1{area}{rng.randrange(200, 1000)}{rng.randrange(10_000):04d}"
