"""The workspace in English and 简体中文: catalogs, each request's language and time zone, localised formats.

Messages are written in English in the templates and code; catalogs live as .po files under
translations/<locale>/LC_MESSAGES/messages.po and are compiled in memory when the process starts (no .mo
file in git or in the package). docs/i18n.md explains extracting, updating and adding a language.
"""

from __future__ import annotations

import gettext as gettext_module
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations
from fastapi import Request

from threadline.accounts import UserInfo, get_preferences

TRANSLATIONS = Path(__file__).parent / "translations"
DOMAIN = "messages"
DEFAULT_LOCALE = "en"
# Each language by its own name, as a reader of that language looks for it in a switcher.
LANGUAGES = {"en": "English", "zh_Hans_CN": "简体中文"}
LANG_COOKIE = "tl_lang"
# Scripts and regions whose readers expect Simplified characters; zh-TW / zh-HK / zh-Hant do not.
_SIMPLIFIED = {"hans", "cn", "sg"}


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message


CHANNEL_NAMES = {
    "web": N_("web"),
    "app": N_("app"),
    "store": N_("store"),
    "call_center": N_("call center"),
    "email": N_("email"),
    "sms": N_("SMS"),
    "social": N_("social"),
    "chat": N_("chat"),
    "other": N_("other"),
}
ROLE_NAMES = {"admin": N_("admin"), "manager": N_("manager"), "agent": N_("agent"), "analyst": N_("analyst")}
# The review queue: what became of a pair, and what the resolver compared (threadline.resolution).
MATCH_STATUS_NAMES = {
    "pending": N_("waiting for review"),
    "merged": N_("merged"),
    "rejected": N_("rejected"),
    "obsolete": N_("no longer two customers"),
}
COMPARISON_NAMES = {
    "name": N_("Name"),
    "birth_date": N_("Date of birth"),
    "email": N_("Email"),
    "phone": N_("Phone"),
    "address": N_("Address"),
}


@cache
def translations(locale: str) -> gettext_module.NullTranslations:
    """The compiled catalog of a locale; English is the source language and needs none."""
    if locale == DEFAULT_LOCALE:
        return gettext_module.NullTranslations()
    with (TRANSLATIONS / locale / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        catalog = read_po(po, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: a guess is worse than the English text
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def load_catalogs() -> None:
    """Compile every catalog now, so a broken .po stops start-up instead of a page."""
    for locale in LANGUAGES:
        translations(locale)


def locale_for_tag(tag: str) -> str | None:
    """The supported locale for a BCP 47 language tag from a browser (en-GB, zh-CN, zh-Hans), if any."""
    parts = tag.strip().lower().replace("_", "-").split("-")
    if parts[0] == "en":
        return "en"
    if parts[0] == "zh" and (len(parts) == 1 or parts[1] in _SIMPLIFIED):
        return "zh_Hans_CN"
    return None


def negotiate(accept_language: str) -> str | None:
    """The best supported locale for an Accept-Language header, in the browser's order of preference."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag.strip() and quality > 0:
            ranked.append((-quality, position, tag))
    for _q, _position, tag in sorted(ranked):
        locale = locale_for_tag(tag)
        if locale:
            return locale
    return None


def choose_locale(user_locale: str | None, cookie: str | None, accept_language: str) -> str:
    """The user's choice, else the cookie's, else the browser's, else English."""
    for chosen in (user_locale, cookie):
        if chosen in LANGUAGES:
            return chosen
    return negotiate(accept_language) or DEFAULT_LOCALE


def choose_timezone(user_timezone: str | None, default: str) -> ZoneInfo:
    for name in (user_timezone, default):
        if name:
            try:
                return ZoneInfo(name)
            except (ValueError, KeyError):  # a zone removed from tzdata since it was stored
                continue
    return ZoneInfo("UTC")


def as_utc(value: datetime | str) -> datetime:
    """A stored time (naive UTC) or its ISO form from the read models ("...Z") as an aware UTC time."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True, slots=True)
class Localization:
    """What a page needs to speak to one reader: their language, their time zone and the catalog."""

    locale: str
    timezone: ZoneInfo
    catalog: gettext_module.NullTranslations

    @property
    def html_lang(self) -> str:
        return self.locale.replace("_", "-")

    def gettext(self, message: str) -> str:
        return self.catalog.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.catalog.ngettext(singular, plural, n)

    def datetime_text(self, value: datetime | str | None) -> str:
        """Date and minutes in the reader's zone: "Jan 6, 2024, 7:30 AM" / "2024年1月6日 07:30"."""
        if not value:
            return ""
        moment = as_utc(value).astimezone(self.timezone)
        # CLDR's medium date-time glue ("{1}, {0}" in English) without the seconds of the medium time.
        glue = str(Locale.parse(self.locale).datetime_formats["medium"])
        shown_date = format_date(moment, "medium", locale=self.locale)
        shown_time = format_time(moment, "short", locale=self.locale)
        return glue.replace("{1}", shown_date).replace("{0}", shown_time)

    def date_text(self, value: datetime | date | str | None) -> str:
        if not value:
            return ""
        if isinstance(value, date) and not isinstance(value, datetime):
            return format_date(value, "medium", locale=self.locale)
        return format_date(as_utc(value).astimezone(self.timezone), "medium", locale=self.locale)

    def number_text(self, value: float | Decimal | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.locale)

    def currency_text(self, value: float | Decimal | None, code: str) -> str:
        return "" if value is None else format_currency(value, code, locale=self.locale)


ENGLISH = Localization(DEFAULT_LOCALE, ZoneInfo("UTC"), translations(DEFAULT_LOCALE))


def localization(request: Request, user: UserInfo | None = None) -> Localization:
    """The language and zone for this request: the signed-in user's choices first, then cookie, browser."""
    # Only a page that checked the session passes `user`: the cookie alone says nothing about who it is.
    chosen = get_preferences(request.app.state.db, user.id) if user is not None else None
    locale = choose_locale(
        chosen.locale if chosen else None,
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language", ""),
    )
    zone = choose_timezone(chosen.timezone if chosen else None, request.app.state.settings.timezone)
    return Localization(locale, zone, translations(locale))
