"""A person's name in one comparable Latin form, whatever script and order it was typed in.

`latin_name("伟", "张", None)`, `latin_name(None, None, "张伟")`, `latin_name("Wei", "Zhang", None)` and
`latin_name(None, None, "ZHANG Wei")` all give `LatinName(given="wei", family="zhang")`. The matching model
(`threadline.resolution.model`) compares these parts, each way round, so "Zhang Wei" typed surname-first
in a Latin field still meets "Wei Zhang": `LatinName.key` (the parts, sorted) is order-free.

Chinese is romanised with pypinyin (Hanyu Pinyin without tones, ü as u, a given name's syllables joined
as in a passport: 张小明 -> "xiaoming zhang"); surnames with a reading of their own (曾 zeng, 单 shan) and
two-character surnames (欧阳) are looked up first. Other scripts lose their accents (José -> jose);
scripts neither covers (Cyrillic, Hangul, kana) pass through lower-cased.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeGuard

from pypinyin import Style, lazy_pinyin

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SEPARATORS = re.compile(r"[\s,.;/_]+")
_JOINERS = re.compile(r"[-'’`]")
# Letters NFKD does not decompose into a base letter plus accents.
_FOLD = str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th"})

# Two-character surnames: 欧阳娜娜 is 欧阳 + 娜娜, not 欧 + 阳娜娜.
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "轩辕",
        "令狐",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "百里",
        "呼延",
        "申屠",
        "太史",
        "闻人",
        "赫连",
        "澹台",
        "公羊",
        "濮阳",
        "淳于",
        "单于",
        "钟离",
        "宗政",
        "万俟",
        "司空",
        "拓跋",
        "歐陽",
        "司馬",
        "諸葛",
        "東方",
        "長孫",
        "夏侯",
        "軒轅",
        "鍾離",
    ]
)
# As a surname these characters are read differently from their most common reading.
SURNAME_READINGS = {
    "曾": "zeng", "单": "shan", "單": "shan", "解": "xie", "仇": "qiu", "朴": "piao", "区": "ou", "區": "ou",
    "查": "zha", "盖": "ge", "蓋": "ge", "乐": "yue", "樂": "yue", "缪": "miao", "繆": "miao", "覃": "qin",
    "翟": "zhai", "员": "yun", "員": "yun", "秘": "bi", "种": "chong", "種": "chong", "葛": "ge",
    "尉迟": "yuchi", "万俟": "moqi", "单于": "chanyu", "長孫": "zhangsun", "长孙": "zhangsun",
}  # fmt: skip

# Short forms that people use for themselves; the model compares the formal name they stand for.
NICKNAMES = {
    "abby": "abigail", "al": "albert", "alex": "alexander", "andy": "andrew", "art": "arthur",
    "artie": "arthur", "barb": "barbara", "ben": "benjamin", "beth": "elizabeth", "betty": "elizabeth",
    "bill": "william", "billy": "william", "bob": "robert", "bobby": "robert", "cathy": "catherine",
    "charlie": "charles", "chris": "christopher", "chuck": "charles", "dan": "daniel", "danny": "daniel",
    "dave": "david", "debbie": "deborah", "dick": "richard", "don": "donald", "ed": "edward",
    "eddie": "edward", "fred": "frederick", "freddie": "frederick", "greg": "gregory", "harry": "henry",
    "jack": "john", "jake": "jacob", "jeff": "jeffrey", "jen": "jennifer", "jenny": "jennifer",
    "jerry": "gerald", "jim": "james", "jimmy": "james", "joe": "joseph", "joey": "joseph",
    "johnny": "john", "jon": "jonathan", "josh": "joshua", "kate": "katherine", "katie": "katherine",
    "ken": "kenneth", "kenny": "kenneth", "larry": "lawrence", "liz": "elizabeth", "maggie": "margaret",
    "matt": "matthew", "meg": "margaret", "mike": "michael", "mick": "michael",
    "nate": "nathan", "nick": "nicholas", "pam": "pamela", "pat": "patricia", "patty": "patricia",
    "peggy": "margaret", "pete": "peter", "phil": "philip", "ray": "raymond", "rich": "richard",
    "rick": "richard", "rob": "robert", "robbie": "robert", "ron": "ronald", "sam": "samuel",
    "sandy": "sandra", "steve": "stephen", "steven": "stephen", "sue": "susan", "susie": "susan",
    "ted": "edward", "tim": "timothy", "tom": "thomas", "tommy": "thomas", "tony": "anthony",
    "vicky": "victoria", "wally": "walter", "will": "william", "willie": "william", "zach": "zachary",
    "becky": "rebecca", "cindy": "cynthia", "jess": "jessica", "kim": "kimberly", "mandy": "amanda",
    "mandie": "amanda", "nicky": "nicole", "stan": "stanley", "terry": "terence", "val": "valerie",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class LatinName:
    """A name's given and family parts, lower-case ASCII where the script allows, either may be None."""

    given: str | None
    family: str | None

    @property
    def key(self) -> str | None:
        """The parts sorted and joined by a space: the same for "Wei Zhang", "Zhang Wei" and 张伟."""
        parts = sorted(p for p in (self.given, self.family) if p)
        return " ".join(parts) or None

    @property
    def formal_given(self) -> str | None:
        """The given name with a nickname replaced by the formal name (bob -> robert)."""
        return formal_name(self.given) if self.given else None


def latin_name(first: str | None, last: str | None, full: str | None) -> LatinName:
    """The comparable Latin form of a name typed as first/last fields or as one full-name field.

    First and last fields win when either is filled; otherwise the full name is split: Chinese as surname
    then given name, a Latin name with a comma ("Zhang, Wei") or an all-capitals part ("ZHANG Wei") with
    that part as the surname, any other Latin name as given ... family with middle names dropped.
    """
    if present(first) or present(last):
        return LatinName(
            romanise_given(first) if present(first) else None,
            romanise_family(last) if present(last) else None,
        )
    return split_full_name(full) if present(full) else LatinName(None, None)


def formal_name(given: str) -> str:
    return NICKNAMES.get(given, given)


def present(value: str | None) -> TypeGuard[str]:
    """Filled in: not None and not only spaces (what counts as typed for `latin_name`)."""
    return value is not None and value.strip() != ""


def romanise_given(text: str) -> str | None:
    """A first-name field as `latin_name` reads it: "Xiao-Ming" -> "xiaoming", 小明 -> "xiaoming"."""
    return _romanise_part(text) or None


def romanise_family(text: str) -> str | None:
    """A last-name field as `latin_name` reads it, with surname readings: 曾 -> "zeng", 欧阳 -> "ouyang"."""
    return _romanise_family(text) or None


@lru_cache(maxsize=65536)
def split_full_name(full: str) -> LatinName:
    """A full-name field as `latin_name` reads it when no first or last name is filled in."""
    return _split_full(unicodedata.normalize("NFKC", full).strip())


def _split_full(full: str) -> LatinName:
    if _HAN.search(full):
        han = "".join(ch for ch in full if not ch.isspace() and ch not in "·•.")
        cut = 2 if han[:2] in COMPOUND_SURNAMES else 1
        if len(han) <= cut:  # one character alone: nothing says which part it is
            return LatinName(_romanise_part(han) or None, None)
        return LatinName(_romanise_part(han[cut:]) or None, _romanise_family(han[:cut]) or None)
    if "," in full:
        family, _, given = full.partition(",")
        return LatinName(_first_token(given), _romanise_part(family) or None)
    tokens = [t for t in _SEPARATORS.split(full) if t]
    if not tokens:
        return LatinName(None, None)
    if len(tokens) == 1:
        return LatinName(_romanise_part(tokens[0]) or None, None)
    capitals = [t for t in tokens if t.isupper() and len(t) > 1]
    if len(capitals) == 1 and len(tokens) > 1:
        others = [t for t in tokens if t is not capitals[0]]
        return LatinName(_romanise_part(others[0]) or None, _romanise_part(capitals[0]) or None)
    return LatinName(_romanise_part(tokens[0]) or None, _romanise_part(tokens[-1]) or None)


def _first_token(text: str) -> str | None:
    tokens = [t for t in _SEPARATORS.split(text) if t]
    return (_romanise_part(tokens[0]) or None) if tokens else None


@lru_cache(maxsize=65536)
def _romanise_family(text: str) -> str:
    han = "".join(ch for ch in text if not ch.isspace())
    if han in SURNAME_READINGS:
        return SURNAME_READINGS[han]
    if han and han[0] in SURNAME_READINGS and _HAN.fullmatch(han[0]):
        return SURNAME_READINGS[han[0]] + _romanise_part(han[1:])
    return _romanise_part(text)


@lru_cache(maxsize=262144)
def _romanise_part(text: str) -> str:
    """One name part as one lower-case token: pinyin syllables and hyphenated parts joined."""
    if text.isascii():  # most names: nothing to normalise, romanise or strip of accents
        return "".join(_JOINERS.sub("", t) for t in _SEPARATORS.split(text.lower()) if t)
    text = unicodedata.normalize("NFKC", text).strip().lower()
    if _HAN.search(text):
        text = "".join(lazy_pinyin(text, style=Style.NORMAL, v_to_u=True)).replace("ü", "u")
    text = unicodedata.normalize("NFKD", text.translate(_FOLD))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return "".join(_JOINERS.sub("", t) for t in _SEPARATORS.split(text) if t)


_PLACE_SUFFIXES = ("特别行政区", "自治区", "自治州", "市", "省", "区", "县")


@lru_cache(maxsize=65536)
def latin_place(text: str) -> str | None:
    """A place name (a city) as lower-case ASCII words: "上海市" -> "shanghai", "São Paulo" -> "sao paulo"."""
    text = unicodedata.normalize("NFKC", text).strip()
    if _HAN.search(text):
        for suffix in _PLACE_SUFFIXES:
            if text.endswith(suffix) and len(text) > len(suffix) + 1:
                text = text[: -len(suffix)]
                break
        return _romanise_part(text) or None
    text = unicodedata.normalize("NFKD", text.lower().translate(_FOLD))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.findall(r"[^\W_]+", text)) or None
