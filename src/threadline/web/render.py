"""What every workspace page shares: the templates, their filters and globals, and `render`.

Every page is rendered in its reader's language and time zone (web/i18n.py): `_`, `ngettext` and the
filters `datetime`, `date`, `number`, `currency(code)`, `channel_name` and `role_name` read the request's
`Localization` from the template context, so one shared Jinja environment serves readers of both languages
at the same time.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from threadline.accounts import UserInfo
from threadline.web.i18n import (
    CHANNEL_NAMES,
    COMPARISON_NAMES,
    ENGLISH,
    LANGUAGES,
    MATCH_STATUS_NAMES,
    ROLE_NAMES,
    Localization,
    load_catalogs,
    localization,
)
from threadline.web.session import csrf_token

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
load_catalogs()
# Letters in coloured badges rather than emoji: a server or kiosk without an emoji font shows boxes.
CHANNEL_ICONS = {
    "web": "W",
    "app": "A",
    "store": "S",
    "call_center": "C",
    "email": "E",
    "sms": "M",
    "social": "So",
    "chat": "Ch",
    "other": "•",
}


def show_value(value: Any) -> str:
    """A trait or property as a person reads it: nested objects as `key: value` pairs."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {show_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(show_value(v) for v in value)
    return str(value)


def _l10n(context: Context) -> Localization:
    found = context.get("l10n")
    return found if isinstance(found, Localization) else ENGLISH


def _fill(context: Context, text: str, variables: dict[str, Any]) -> str:
    # As Jinja's own i18n extension does: the catalog's text is trusted markup (it may hold <code>),
    # the values put into it are escaped.
    if context.eval_ctx.autoescape:
        text = Markup(text)
    return text % variables if variables else text


@pass_context
def gettext(context: Context, message: str, **variables: Any) -> str:
    """`{{ _("No customer matches “%(q)s”.", q=q) }}`: translated, then filled in."""
    return _fill(context, _l10n(context).gettext(message), variables)


@pass_context
def ngettext(context: Context, singular: str, plural: str, n: int, **variables: Any) -> str:
    """`{{ ngettext("%(num)s event", "%(num)s events", n) }}`; `num` defaults to n."""
    variables.setdefault("num", n)
    return _fill(context, _l10n(context).ngettext(singular, plural, n), variables)


@pass_context
def format_datetime(context: Context, value: datetime | str | None) -> str:
    return _l10n(context).datetime_text(value)


@pass_context
def format_date(context: Context, value: datetime | date | str | None) -> str:
    return _l10n(context).date_text(value)


@pass_context
def format_number(context: Context, value: float | Decimal | None) -> str:
    return _l10n(context).number_text(value)


@pass_context
def format_currency(context: Context, value: float | Decimal | None, code: str) -> str:
    return _l10n(context).currency_text(value, code)


@pass_context
def channel_name(context: Context, channel: str) -> str:
    """A channel's label in the reader's language; URLs and filters keep the raw key."""
    return _l10n(context).gettext(CHANNEL_NAMES.get(channel, channel))


@pass_context
def role_name(context: Context, role: str) -> str:
    return _l10n(context).gettext(ROLE_NAMES.get(role, role))


@pass_context
def match_status(context: Context, status: str) -> str:
    return _l10n(context).gettext(MATCH_STATUS_NAMES.get(status, status))


@pass_context
def comparison_name(context: Context, comparison: str) -> str:
    return _l10n(context).gettext(COMPARISON_NAMES.get(comparison, comparison))


templates.env.globals |= {"_": gettext, "gettext": gettext, "ngettext": ngettext, "languages": LANGUAGES}
templates.env.filters |= {
    "show": show_value,
    "datetime": format_datetime,
    "date": format_date,
    "number": format_number,
    "currency": format_currency,
    "channel_name": channel_name,
    "role_name": role_name,
    "match_status": match_status,
    "comparison_name": comparison_name,
}


def render(request: Request, name: str, /, status: int = 200, **context: Any) -> HTMLResponse:
    """The template `name` in the reader's language; request and name are positional so that a page
    may pass a `name` of its own in the context."""
    user = context.get("user")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    context |= {
        "csrf": csrf_token(request),
        "icons": CHANNEL_ICONS,
        "l10n": localization(request, user if isinstance(user, UserInfo) else None),
        "here": here,  # where the language switcher comes back to
    }
    response = templates.TemplateResponse(request, name, context, status_code=status)
    # The same URL answers in another language for another cookie or browser: caches must not mix them.
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response
