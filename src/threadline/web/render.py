"""What every workspace page shares: the templates, their filters and globals, and `render`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from threadline.web.session import csrf_token

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
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


templates.env.filters["show"] = show_value


def gettext(message: str) -> str:
    """Placeholder for the translation catalogs (English and 简体中文 come with the i18n work)."""
    return message


templates.env.globals["_"] = gettext


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context |= {"csrf": csrf_token(request), "icons": CHANNEL_ICONS}
    return templates.TemplateResponse(request, name, context, status_code=status)
