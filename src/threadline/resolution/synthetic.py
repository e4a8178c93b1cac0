"""Customer records with known truth, corrupted the way real customer data is, for tests and benchmarks.

`generate(records, seed=..., easy=False)` returns a pyarrow table with the model's `RECORD_COLUMNS` and
`person`, the truth: records with the same `person` are one customer. Deterministic for a seed.

Realistic mode: a third of the people have Chinese names, written 张伟, or as first/last 伟/张, or in pinyin
("Wei Zhang", "ZHANG Wei", surname first or last), the same person in both scripts across records. About
half of the people have one record, the rest 2-8. Records of one person differ by typos, nicknames
(Robert/Bob), swapped first and last name, a changed family name, a moved house, a new phone or email, a
day/month swap in the birth date, and missing fields. Hard non-matches are built in: people sharing a
household (family name, address, often the landline) and namesakes drawn from real name frequencies.

Easy mode is FEBRL-like: Latin names only, complete originals, and each duplicate has one or two small
changes (a typo, a missing field, a nickname).

Name lists are Faker's (en_US and zh_CN providers), read as data: nothing is fetched.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta

import pyarrow as pa
from faker.providers.address.en_US import Provider as UsAddress
from faker.providers.address.zh_CN import Provider as CnAddress
from faker.providers.person.en_US import Provider as UsPerson
from faker.providers.person.zh_CN import Provider as CnPerson

from threadline.resolution.blocking import RECORD_COLUMNS
from threadline.resolution.names import NICKNAMES, latin_name

Record = dict[str, str | None]

_NICKS: dict[str, list[str]] = {}
for _nick, _formal in NICKNAMES.items():
    _NICKS.setdefault(_formal, []).append(_nick)

_STREET_SHORT = {"Street": "St", "Avenue": "Ave", "Road": "Rd", "Drive": "Dr", "Lane": "Ln", "Court": "Ct"}
_LATIN_DOMAINS = (("gmail.com", 40), ("yahoo.com", 15), ("hotmail.com", 12), ("outlook.com", 12),
                  ("icloud.com", 10), ("aol.com", 3), ("proton.me", 3), ("comcast.net", 5))  # fmt: skip
_CHINESE_DOMAINS = (("qq.com", 40), ("163.com", 25), ("126.com", 10), ("gmail.com", 15), ("sina.com", 10))
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


@dataclass(frozen=True, slots=True)
class Address:
    street: str
    postcode: str
    city: str


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    chinese: bool
    female: bool
    given: str  # Latin: "Robert"; Chinese: 伟 (the pinyin form is derived)
    family: str
    birth: date
    email: str
    phone: str
    address: Address


class _World:
    """The pools people are drawn from: names with their real frequencies, cities with postcodes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.emails: set[str] = set()
        self.male = _weighted(UsPerson.first_names_male)
        self.female = _weighted(UsPerson.first_names_female)
        self.family = _weighted(UsPerson.last_names)
        self.cn_family = _weighted(CnPerson.last_names)
        self.cn_male = list(CnPerson.first_names_male)
        self.cn_female = list(CnPerson.first_names_female)
        last_names = list(UsPerson.last_names)
        first_names = list(UsPerson.first_names_male)
        self.street_names = last_names + first_names
        self.street_suffixes = (
            "Street",
            "Avenue",
            "Road",
            "Drive",
            "Lane",
            "Court",
            *UsAddress.street_suffixes[:20],
        )
        self.us_cities: list[tuple[str, list[str]]] = []
        seen: set[str] = set()
        while len(self.us_cities) < 400:
            city = rng.choice(
                (
                    f"{rng.choice(UsAddress.city_prefixes)} {rng.choice(first_names)}",
                    f"{rng.choice(last_names)}{rng.choice(UsAddress.city_suffixes)}",
                    f"{rng.choice(first_names)}{rng.choice(UsAddress.city_suffixes)}",
                )
            )
            if city in seen:
                continue
            seen.add(city)
            base = rng.randrange(10000, 99000)
            self.us_cities.append((city, [f"{base + i:05d}" for i in range(rng.choice((1, 2, 4, 8, 16)))]))
        self.us_city_weights = [1 / (rank + 1) for rank in range(len(self.us_cities))]  # Zipf-like
        self.cn_cities = [
            (city, [f"{rng.randrange(100, 860):03d}{i:03d}" for i in range(rng.choice((2, 4, 8)))])
            for city in CnAddress.cities
        ]
        self.cn_city_weights = [1 / (rank + 1) for rank in range(len(self.cn_cities))]

    def address(self, chinese: bool) -> Address:
        rng = self.rng
        if chinese and rng.random() < 0.75:
            city, codes = rng.choices(self.cn_cities, self.cn_city_weights)[0]
            road = rng.choice((rng.choice(self.cn_family[0]), city))
            street = f"{road}{rng.choice(CnAddress.street_suffixes)}{rng.randrange(1, 300)}号"
            return Address(street, rng.choice(codes), f"{city}市" if rng.random() < 0.5 else city)
        city, codes = rng.choices(self.us_cities, self.us_city_weights)[0]
        name = rng.choice(self.street_names)
        suffix = rng.choice(self.street_suffixes)
        return Address(f"{rng.randrange(1, 9999)} {name} {suffix}", rng.choice(codes), city)

    def phone(self, chinese: bool) -> str:
        rng = self.rng
        if chinese:
            return f"+861{rng.choice('3456789')}{rng.randrange(0, 10**9):09d}"
        return f"+1{rng.randrange(201, 990)}{rng.randrange(200, 1000)}{rng.randrange(0, 10**4):04d}"

    def email(self, chinese: bool, given: str, family: str, birth: date) -> str:
        rng = self.rng
        domains = _CHINESE_DOMAINS if chinese else _LATIN_DOMAINS
        domain = rng.choices([d for d, _ in domains], [w for _, w in domains])[0]
        if chinese:
            name = latin_name(given, family, None)
            given, family = name.given or "", name.family or ""
            if domain == "qq.com" and rng.random() < 0.6:
                return f"{rng.randrange(10**7, 10**11)}@qq.com"
        given, family = _ascii(given), _ascii(family)
        local = rng.choice(
            (
                f"{given}.{family}",
                f"{given}{family}{rng.randrange(1, 100)}",
                f"{given[0]}{family}",
                f"{family}{given}{birth.year % 100:02d}",
                f"{given}_{family}{rng.randrange(1, 1000)}",
                f"{given}{rng.randrange(100, 10000)}",
            )
        )
        address = f"{local}@{domain}"
        while address in self.emails:  # an address is one person's, as a mail provider sees to
            address = f"{local}{rng.randrange(10, 10000)}@{domain}"
        self.emails.add(address)
        return address

    def birth(self) -> date:
        return date(1940, 1, 1) + timedelta(days=self.rng.randrange(0, 67 * 365))

    def person(self, number: int, chinese: bool) -> Person:
        rng = self.rng
        female = rng.random() < 0.5
        if chinese:
            family = rng.choices(*self.cn_family)[0]
            pool = self.cn_female if female else self.cn_male
            given = rng.choice(pool) if rng.random() < 0.4 else rng.choice(pool)[0] + rng.choice(pool)[0]
        else:
            given = rng.choices(*(self.female if female else self.male))[0]
            family = rng.choices(*self.family)[0]
        birth = self.birth()
        return Person(
            f"p{number}",
            chinese,
            female,
            given,
            family,
            birth,
            self.email(chinese, given, family, birth),
            self.phone(chinese),
            self.address(chinese),
        )

    def housemate(self, number: int, host: Person) -> Person:
        """Someone living with `host`: same family name, address and often landline; other name and age."""
        rng = self.rng
        other = self.person(number, host.chinese)
        while other.given == host.given:
            other = self.person(number, host.chinese)
        child = host.birth + timedelta(days=rng.randrange(20 * 365, 35 * 365))
        spouse = host.birth + timedelta(days=rng.randrange(-8 * 365, 8 * 365))
        birth = child if rng.random() < 0.5 and child.year < 2008 else spouse
        return replace(
            other,
            family=host.family,
            birth=birth,
            email=self.email(host.chinese, other.given, host.family, birth),
            phone=host.phone if rng.random() < 0.4 else other.phone,
            address=host.address,
        )


def generate(records: int, *, seed: int = 0, easy: bool = False) -> pa.Table:
    """`records` records of generated people, shuffled, with ids r0000000... and the truth in `person`."""
    rng = random.Random(seed)
    world = _World(rng)
    sizes = ((1, 2, 3, 4), (50, 30, 15, 5)) if easy else ((1, 2, 3, 4, 5, 6, 8), (50, 25, 12, 6, 4, 2, 1))
    people: list[Person] = []
    rows: list[Record] = []
    while len(rows) < records:
        if not easy and people and rng.random() < 0.12:
            person = world.housemate(len(people), rng.choice(people[-1000:]))
        else:
            person = world.person(len(people), chinese=not easy and rng.random() < 0.33)
        people.append(person)
        count = rng.choices(*sizes)[0]
        for copy in range(min(count, records - len(rows))):
            if copy == 0:
                row = _original(world, person, easy)
            else:
                row = _easy_duplicate(rng, person) if easy else _duplicate(world, person)
            row["person"] = person.id
            rows.append(row)
    rng.shuffle(rows)
    columns: dict[str, list[str | None]] = {c: [] for c in (*RECORD_COLUMNS, "person")}
    for number, row in enumerate(rows):
        row["unique_id"] = f"r{number:07d}"
        for column, values in columns.items():
            values.append(row.get(column))
    return pa.table({c: pa.array(v, pa.string()) for c, v in columns.items()})


# -- rendering and corrupting one record ------------------------------------------------------------


def _original(world: _World, person: Person, easy: bool) -> Record:
    """The person's first record: right, but (outside easy mode) not always complete."""
    rng = world.rng
    row = _render(rng, person)
    if not easy:
        for column, share in (("birth_date", 0.08), ("email", 0.15), ("phone", 0.15)):
            if rng.random() < share:
                row[column] = None
        if rng.random() < 0.1:
            row.update(street=None, postcode=None, city=None)
    return row


def _render(
    rng: random.Random, person: Person, *, given: str | None = None, family: str | None = None
) -> Record:
    given = given if given is not None else person.given
    family = family if family is not None else person.family
    row: Record = {
        "birth_date": person.birth.isoformat(),
        "email": person.email,
        "phone": person.phone,
        "street": person.address.street,
        "postcode": person.address.postcode,
        "city": person.address.city,
    }
    row.update(_name_fields(rng, person.chinese, given, family))
    return row


def _name_fields(rng: random.Random, chinese: bool, given: str, family: str) -> Record:
    draw = rng.random()
    if chinese:
        if draw < 0.55:
            return {"full_name": f"{family}{given}"}
        if draw < 0.65:
            return {"first_name": given, "last_name": family}
        name = latin_name(given, family, None)
        pinyin_given, pinyin_family = (name.given or "").capitalize(), (name.family or "").capitalize()
        if draw < 0.85:
            return {"first_name": pinyin_given, "last_name": pinyin_family}
        if draw < 0.92:
            return {"full_name": f"{pinyin_family} {pinyin_given}"}
        if draw < 0.96:
            return {"full_name": f"{pinyin_family.upper()} {pinyin_given}"}
        return {"full_name": f"{pinyin_given} {pinyin_family}"}
    if draw < 0.75:
        return {"first_name": given, "last_name": family}
    if draw < 0.95:
        return {"full_name": f"{given} {family}"}
    return {"full_name": f"{given} {family}".upper()}


def _duplicate(world: _World, person: Person) -> Record:
    """Another record of the same person, as another channel or a later visit would have it."""
    rng = world.rng
    given, family = person.given, person.family
    if not person.chinese:
        if given.lower() in _NICKS and rng.random() < 0.2:
            given = rng.choice(_NICKS[given.lower()]).capitalize()
        if rng.random() < 0.12:
            given = _typo(rng, given)
        if rng.random() < 0.08:
            family = _typo(rng, family)
        if person.female and rng.random() < 0.03:
            family = rng.choices(*world.family)[0]
    row = _render(rng, person, given=given, family=family)
    draw = rng.random()
    if "first_name" in row and draw < 0.04:
        row["first_name"], row["last_name"] = row["last_name"], row["first_name"]
    elif "first_name" in row and draw < 0.07:
        row["first_name"] = None
    elif "first_name" in row and draw < 0.10 and not person.chinese:
        row["first_name"] = f"{(row['first_name'] or 'x')[0]}."
    if person.chinese and "first_name" in row and rng.random() < 0.06:
        row["first_name"] = (
            _typo(rng, row["first_name"] or "") if (row["first_name"] or "").isascii() else None
        )

    draw = rng.random()
    if draw < 0.15:
        row["birth_date"] = None
    elif draw < 0.20:
        row["birth_date"] = _digit_typo(rng, person.birth.isoformat())
    elif draw < 0.23 and person.birth.day <= 12 and person.birth.day != person.birth.month:
        row["birth_date"] = date(person.birth.year, person.birth.day, person.birth.month).isoformat()
    elif draw < 0.24:
        row["birth_date"] = person.birth.replace(
            year=person.birth.year + rng.choice((-1, 1)), day=1
        ).isoformat()

    draw = rng.random()
    if draw < 0.30:
        row["email"] = None
    elif draw < 0.42:
        row["email"] = world.email(person.chinese, given, family, person.birth)
    elif draw < 0.45:
        row["email"] = _typo(rng, person.email)

    draw = rng.random()
    if draw < 0.30:
        row["phone"] = None
    elif draw < 0.42:
        row["phone"] = world.phone(person.chinese)
    elif draw < 0.44:
        row["phone"] = _digit_typo(rng, person.phone, skip=3)

    draw = rng.random()
    if draw < 0.20:
        row.update(street=None, postcode=None, city=None)
    else:
        if draw < 0.35:
            moved = world.address(person.chinese)
            if rng.random() < 0.5 and moved.city != person.address.city and person.address.city.isascii():
                moved = replace(moved, city=person.address.city, postcode=person.address.postcode)
            row.update(street=moved.street, postcode=moved.postcode, city=moved.city)
        street = row["street"] or ""
        if rng.random() < 0.05:
            row["street"] = _typo(rng, street)
        elif rng.random() < 0.2:
            for long, short in _STREET_SHORT.items():
                street = street.replace(f" {long}", f" {short}")
            row["street"] = street
        if rng.random() < 0.1:
            row["postcode"] = None
        if rng.random() < 0.05:
            row["city"] = None
    return row


def _easy_duplicate(rng: random.Random, person: Person) -> Record:
    """FEBRL-like: the original with one or two small changes."""
    row = _render(rng, person)
    for _ in range(rng.choice((1, 1, 2))):
        change = rng.randrange(7)
        name_field = "first_name" if "first_name" in row else "full_name"
        if change == 0:
            row[name_field] = _typo(rng, row[name_field] or "")
        elif change == 1 and "last_name" in row:
            row["last_name"] = _typo(rng, row["last_name"] or "")
        elif change == 2:
            row["street"] = _typo(rng, row["street"] or "")
        elif change == 3:
            row["birth_date"] = _digit_typo(rng, row["birth_date"] or "")
        elif change == 4:
            row[rng.choice(("email", "phone", "street", "birth_date"))] = None
        elif change == 5:
            row["phone"] = _digit_typo(rng, row["phone"] or "", skip=3)
        elif change == 6 and person.given.lower() in _NICKS and "first_name" in row:
            row["first_name"] = rng.choice(_NICKS[person.given.lower()]).capitalize()
    return row


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    at = rng.randrange(1, len(text) - 1)  # people rarely get the first letter wrong
    kind = rng.randrange(4)
    letter = rng.choice(_KEYBOARD)
    if kind == 0:
        return text[:at] + text[at + 1 :]
    if kind == 1:
        return text[:at] + letter + text[at:]
    if kind == 2:
        return text[:at] + letter + text[at + 1 :]
    at = max(at, 2)
    return text[: at - 1] + text[at] + text[at - 1] + text[at + 1 :] if at < len(text) else text


def _digit_typo(rng: random.Random, text: str, *, skip: int = 0) -> str:
    places = [i for i, ch in enumerate(text) if ch.isdigit() and i >= skip]
    if not places:
        return text
    at = rng.choice(places)
    return text[:at] + rng.choice([d for d in "0123456789" if d != text[at]]) + text[at + 1 :]


def _weighted(names: dict[str, float] | tuple[str, ...] | list[str]) -> tuple[list[str], list[float]]:
    if isinstance(names, dict):
        return list(names), list(names.values())
    return list(names), [1.0] * len(names)


def _ascii(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isascii() and ch.isalnum()) or "x"
