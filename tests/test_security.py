"""Security headers on every response, and the rate limits on ingestion and signing in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from tests.conftest import LiveServer
from tests.factories import make_source, make_token
from tests.test_web_pages import csrf_of
from threadline.config import Settings
from threadline.privacy import search_audit
from threadline.storage import Database

NOW = datetime(2025, 3, 1, 9, 0)  # a clock that stands still: no bucket refills during a test


def frozen() -> datetime:
    return NOW


def test_every_response_carries_the_security_headers(http: httpx.Client, db: Database) -> None:
    source = make_source(db)
    answers = [
        http.get("/login"),
        http.get("/customers"),  # a redirect
        http.get("/api/v1/profiles"),  # a 401
        http.get("/static/threadline.js"),
        http.post("/v1/track", json={"userId": "u-1", "event": "X"}, auth=(source.write_key, "")),
        http.get("/healthz"),
    ]
    for response in answers:
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp, response.url
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "camera=()" in headers["permissions-policy"]
        assert "strict-transport-security" not in headers  # plain HTTP
    docs = http.get("/docs").headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in docs  # Swagger UI comes from its CDN


def test_hsts_only_over_https(http: httpx.Client, db: Database) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1, as it would from a TLS-terminating proxy there.
    response = http.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_the_tracker_still_loads_and_posts_cross_origin(http: httpx.Client, db: Database) -> None:
    source = make_source(db)
    shop = {"Origin": "http://shop.localhost:8000"}
    script = http.get("/static/threadline.js", headers=shop)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    preflight = http.options(
        "/v1/batch",
        headers={
            **shop,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"
    sent = http.post(
        "/v1/batch",
        json={"writeKey": source.write_key, "batch": [{"type": "page", "anonymousId": "a"}]},
        headers=shop,
    )
    assert sent.status_code == 200 and sent.headers["access-control-allow-origin"] == "*"


@pytest.fixture
def limited(settings: Settings, db: Database) -> Iterator[httpx.Client]:
    strict = settings.model_copy(
        update={"ingest_rate_limit": 1.0, "ingest_rate_burst": 3, "login_rate_limit": 3}
    )
    with LiveServer(strict, db, clock=frozen) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def test_ingestion_is_limited_per_write_key(limited: httpx.Client, db: Database) -> None:
    first, second = make_source(db, "website"), make_source(db, "store", "store")
    batch = {"batch": [{"type": "track", "userId": f"u-{n}", "event": "X"} for n in range(3)]}
    assert limited.post("/v1/batch", json=batch, auth=(first.write_key, "")).status_code == 200
    refused = limited.post("/v1/track", json={"userId": "u", "event": "X"}, auth=(first.write_key, ""))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "messages a second" in refused.json()["error"]["message"]
    # Another write key has its own bucket.
    other = limited.post("/v1/track", json={"userId": "u", "event": "X"}, auth=(second.write_key, ""))
    assert other.status_code == 200


def test_ingestion_limit_is_off_at_zero_and_high_by_default(settings: Settings) -> None:
    assert Settings().ingest_rate_limit >= 5_000  # bench/ sends about 5,000 events a second
    from threadline.api.rate_limits import TokenBuckets

    off = TokenBuckets(0, 1)
    assert all(off.take("k", 1000, now=0) == 0 for _ in range(100))
    buckets = TokenBuckets(2, 4)
    assert buckets.take("k", 4, now=0) == 0
    assert buckets.take("k", 1, now=0) == pytest.approx(0.5)
    assert buckets.take("k", 1, now=0.5) == 0  # refilled by rate x time


def test_sign_in_is_limited_per_client_address(limited: httpx.Client, db: Database) -> None:
    make_token(db)
    form = limited.get("/login")
    tries = [
        limited.post(
            "/login",
            data={"email": f"nobody{n}@example.com", "password": "wrong", "csrf": csrf_of(form.text)},
        )
        for n in range(4)
    ]
    assert [t.status_code for t in tries] == [401, 401, 401, 429]
    assert "Too many sign-in attempts from your network" in tries[-1].text
    assert tries[-1].headers["retry-after"] == "20"
    # Even the right password waits: the address, not the account, is over its limit.
    right = limited.post(
        "/login",
        data={"email": "admin@example.com", "password": "correct horse battery", "csrf": csrf_of(form.text)},
    )
    assert right.status_code == 429
    assert len(search_audit(db, action="sign_in_limited")) == 2
