"""No page or API answers without a login, a token or a write key: checked over every route."""

from __future__ import annotations

import re

import httpx
from fastapi.routing import APIRoute

from threadline.app import ROUTERS
from threadline.storage import Database

# What may answer a stranger, and why.
PUBLIC = {
    "/login",  # the way in
    "/logout",  # refuses without a session's CSRF token anyway
    "/healthz",  # says only that the database answers
    "/invite/{token}",  # the signed link is the credential
    "/unsubscribe/{token}",  # the signed link is the credential; mail clients post it (RFC 8058)
    "/email/open/{token}.gif",  # the signed token is the credential; the same GIF for any token
    "/email/click/{token}",  # the signed token is the credential; goes only to a link in the message
    "/survey/{token}",  # the random link is the credential: customers answer without an account
    "/survey/{token}/thanks",  # says only "thank you" for a valid link
    "/preferences",  # choosing a language before signing in; no data
    "/preferences/language",  # a language cookie for the login page
    "/calendar/{token}.ics",  # calendar apps cannot sign in: the long random link is the credential
    "/v1/projects/{write_key}/settings",  # analytics.js settings: the write key is the credential
}
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}  # the API's description, no data


def test_every_route_refuses_a_stranger(db: Database, http: httpx.Client) -> None:
    checked = 0
    for route in (r for router in ROUTERS for r in router.routes):
        if not isinstance(route, APIRoute) or route.path in PUBLIC | DOCS:
            continue
        path = re.sub(r"\{[^}]+\}", "x1", route.path)
        for method in sorted(route.methods - {"HEAD"}):
            response = http.request(method, path, json={} if method != "GET" else None)
            checked += 1
            if path.startswith(("/v1/", "/api/")):
                assert response.status_code == 401, (method, path, response.status_code)
            else:
                # Pages send a stranger to the login page; forms without a session's CSRF token are refused.
                refused = response.status_code in (401, 403) or (
                    response.status_code == 303 and response.headers["location"].startswith("/login")
                )
                assert refused, (method, path, response.status_code)
    assert checked > 40
