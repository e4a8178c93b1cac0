"""Choosing the workspace's language (signed in or not) and the signed-in user's time zone."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import (
    UserInfo,
    check_timezone,
    get_preferences,
    set_locale,
    set_timezone,
    timezone_names,
)
from threadline.errors import Invalid
from threadline.web.i18n import LANG_COOKIE, LANGUAGES, localization
from threadline.web.render import render
from threadline.web.session import LoginRequired, WebUser, check_csrf, signed_in_user

router = APIRouter(include_in_schema=False)
COOKIE_AGE = 365 * 24 * 3600  # a language choice outlives any one session


def same_site_path(target: str) -> str:
    # Only paths on this site: "//host" and "/\host" are other sites to a browser (no open redirect).
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _optional_user(request: Request) -> UserInfo | None:
    try:
        return signed_in_user(request)
    except LoginRequired:
        return None


def _page(request: Request, user: UserInfo | None, status: int = 200, error: str | None = None) -> Response:
    chosen = get_preferences(request.app.state.db, user.id) if user else None
    chosen_locale = chosen.locale if chosen else request.cookies.get(LANG_COOKIE)
    return render(
        request,
        "preferences.html",
        status,
        user=user,
        error=error,
        chosen_locale=chosen_locale,
        chosen_timezone=chosen.timezone if chosen else None,
        default_timezone=request.app.state.settings.timezone,
        timezones=timezone_names(),
        now=request.app.state.clock(),
    )


@router.get("/preferences")
def preferences(request: Request) -> Response:
    return _page(request, _optional_user(request))


@router.post("/preferences/language")
def choose_language(
    request: Request, locale: str = Form(""), csrf: str = Form(""), next: str = Form("/")
) -> Response:
    check_csrf(request, csrf)
    user = _optional_user(request)
    if locale and locale not in LANGUAGES:
        l10n = localization(request, user)
        error = l10n.gettext("Unknown language “%(code)s”: choose one of %(choices)s.") % {
            "code": locale,
            "choices": ", ".join(f"{name} ({code})" for code, name in LANGUAGES.items()),
        }
        return _page(request, user, 400, error)
    if user is not None:
        set_locale(request.app.state.db, user.id, locale or None, supported=LANGUAGES)
    response = RedirectResponse(same_site_path(next), status_code=303)
    if locale:
        response.set_cookie(
            LANG_COOKIE,
            locale,
            max_age=COOKIE_AGE,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    else:  # "same as the browser"
        response.delete_cookie(LANG_COOKIE)
    return response


@router.post("/preferences/timezone")
def choose_timezone(
    request: Request, user: WebUser, timezone: str = Form(""), csrf: str = Form(""), next: str = Form("")
) -> Response:
    check_csrf(request, csrf)
    try:
        zone = check_timezone(timezone) if timezone.strip() else None
    except Invalid:
        l10n = localization(request, user)
        error = l10n.gettext(
            "Unknown time zone “%(zone)s”: use an IANA name such as Asia/Shanghai or America/New_York."
        ) % {"zone": timezone}
        return _page(request, user, 400, error)
    set_timezone(request.app.state.db, user.id, zone)
    return RedirectResponse(same_site_path(next or "/preferences"), status_code=303)
