"""The Segment-compatible ingestion API over real HTTP, as Segment's libraries send it."""

from __future__ import annotations

import gzip

import httpx
import orjson
import pytest
from segment.analytics.client import Client as SegmentClient

from tests.conftest import LiveServer
from tests.factories import lookup_profile, make_source, make_token, profile_view, timeline_page
from threadline.config import Settings
from threadline.ingest import list_quarantine
from threadline.storage import Database


@pytest.fixture
def web_key(db: Database) -> str:
    return make_source(db, "website", "web").write_key


def test_segment_python_library_lands_on_the_right_profile(db: Database, server: LiveServer) -> None:
    key = make_source(db, "backend", "other").write_key
    errors: list[Exception] = []
    client = SegmentClient(
        key, host=server.url, sync_mode=True, gzip=True, on_error=lambda e, _batch: errors.append(e)
    )
    client.identify("user-7", {"email": "Seven@Example.com", "name": "Seven", "phone": "+1 212 555 0107"})
    client.track("user-7", "Order Completed", {"total": 12.5, "currency": "USD"})
    client.page("user-7", "Docs", "Getting started", {"path": "/docs"})
    client.screen("user-7", "Home", "Main", {})
    client.group("user-7", "acme", {"name": "Acme Inc"})
    client.alias("user-7", "user-7-new")
    client.flush()
    assert errors == []
    profile = lookup_profile(db, "email", "seven@example.com", region="US")
    assert lookup_profile(db, "user_id", "user-7-new", region="US") == profile
    events = timeline_page(db, profile)["events"]
    assert sorted(e["type"] for e in events) == ["alias", "group", "identify", "page", "screen", "track"]
    order = next(e for e in events if e["type"] == "track")
    assert order["event"] == "Order Completed" and order["properties"] == {"total": 12.5, "currency": "USD"}
    assert order["context"]["library"]["name"] == "analytics-python"


def test_each_endpoint_accepts_its_message_type(http: httpx.Client, web_key: str) -> None:
    bodies = {
        "identify": {"userId": "u1", "traits": {"plan": "pro"}},
        "track": {"userId": "u1", "event": "Clicked"},
        "page": {"anonymousId": "a1", "name": "Home"},
        "screen": {"anonymousId": "a1", "name": "Feed"},
        "group": {"userId": "u1", "groupId": "g1"},
        "alias": {"userId": "u1", "previousId": "a1"},
    }
    for kind, body in bodies.items():
        response = http.post(f"/v1/{kind}", json=body, auth=(web_key, ""))
        assert response.status_code == 200, response.text
        assert response.json()["success"] is True


def test_write_key_in_body_and_text_plain_as_analytics_js_sends_it(
    http: httpx.Client, web_key: str, db: Database
) -> None:
    body = orjson.dumps({"writeKey": web_key, "anonymousId": "browser-1", "event": "Viewed", "type": "track"})
    response = http.post("/v1/t", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    lookup_profile(db, "anonymous_id", "browser-1", region="US")


def test_gzip_batch_is_accepted(http: httpx.Client, web_key: str, db: Database) -> None:
    batch = {"batch": [{"type": "track", "event": "E", "userId": f"g{i}"} for i in range(50)]}
    response = http.post(
        "/v1/batch",
        content=gzip.compress(orjson.dumps(batch)),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        auth=(web_key, ""),
    )
    assert response.json() == {"success": True, "accepted": 50, "duplicates": 0}


def test_bad_write_key_is_401_and_stores_nothing(http: httpx.Client, db: Database) -> None:
    response = http.post("/v1/track", json={"userId": "u", "event": "E"}, auth=("wrong", ""))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_write_key"
    assert response.json()["success"] is False and response.json()["code"] == "invalid_write_key"
    no_key = http.post("/v1/track", json={"userId": "u", "event": "E"})
    assert no_key.status_code == 401
    assert list_quarantine(db) == []


def test_malformed_json_is_400_and_quarantined(http: httpx.Client, web_key: str, db: Database) -> None:
    response = http.post("/v1/batch", content=b'{"batch": [ {"type": "track",', auth=(web_key, ""))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_json"
    [kept] = list_quarantine(db)
    assert kept.id == error["details"]["quarantineId"]
    assert kept.payload.startswith('{"batch"') and "not valid JSON" in kept.reason


def test_wrong_types_name_the_field(http: httpx.Client, web_key: str) -> None:
    response = http.post("/v1/identify", json={"userId": ["x"], "traits": {}}, auth=(web_key, ""))
    assert response.status_code == 400
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == "userId" and detail["reason"] == "must be a string"
    response = http.post(
        "/v1/track", json={"userId": "u", "event": "E", "properties": [1]}, auth=(web_key, "")
    )
    assert response.json()["error"]["details"][0]["field"] == "properties"
    response = http.post(
        "/v1/track", json={"userId": "u", "event": "E", "timestamp": "yesterday"}, auth=(web_key, "")
    )
    assert response.json()["error"]["details"][0]["field"] == "timestamp"


def test_batch_keeps_valid_neighbours_of_invalid_messages(
    http: httpx.Client, web_key: str, db: Database
) -> None:
    batch = [
        {"type": "identify", "userId": "good-1", "traits": {"email": "good@example.com"}},
        {"type": "identify", "userId": "bad-1", "traits": {"email": "good@@example"}, "messageId": "m-bad"},
        {"type": "identify", "userId": "bad-2", "traits": {"phone": "call me"}},
        {"type": "shout", "userId": "bad-3"},
        {"type": "track", "userId": "good-2", "event": "Paid"},
    ]
    response = http.post("/v1/batch", json={"batch": batch}, auth=(web_key, ""))
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 2
    assert [(d["index"], d["field"]) for d in body["error"]["details"]] == [
        (1, "traits.email"),
        (2, "traits.phone"),
        (3, "type"),
    ]
    assert body["error"]["details"][0]["messageId"] == "m-bad"
    assert "3 of 5" in body["error"]["message"]
    lookup_profile(db, "user_id", "good-2", region="US")
    assert {q.field for q in list_quarantine(db)} == {"traits.email", "traits.phone", "type"}


def test_oversize_message_is_413_or_quarantined(
    http: httpx.Client, web_key: str, db: Database, settings: Settings
) -> None:
    big = "x" * (settings.max_message_bytes + 10)
    response = http.post(
        "/v1/track", json={"userId": "u", "event": "E", "properties": {"blob": big}}, auth=(web_key, "")
    )
    assert response.status_code == 400
    assert "larger than 32 KB" in response.json()["error"]["message"]
    batch = [
        {"type": "track", "userId": "u", "event": "Big", "properties": {"blob": big}},
        {"type": "track", "userId": "u", "event": "Small"},
    ]
    response = http.post("/v1/batch", json={"batch": batch}, auth=(web_key, ""))
    assert response.json()["accepted"] == 1
    assert len(list_quarantine(db)) == 2
    huge = {"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"b": "y" * 30000}}] * 20}
    response = http.post("/v1/batch", json=huge, auth=(web_key, ""))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_gzip_bomb_is_refused(http: httpx.Client, web_key: str) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * 5_000_000 + b"]}")
    response = http.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"}, auth=(web_key, ""))
    assert response.status_code == 413


def test_replayed_batch_is_stored_once(http: httpx.Client, web_key: str, db: Database) -> None:
    batch = {
        "batch": [{"type": "track", "event": "E", "userId": "u", "messageId": f"m{i}"} for i in range(20)]
    }
    answers = [http.post("/v1/batch", json=batch, auth=(web_key, "")).json() for _ in range(3)]
    assert [(a["accepted"], a["duplicates"]) for a in answers] == [(20, 0), (0, 20), (0, 20)]
    profile = lookup_profile(db, "user_id", "u", region="US")
    assert profile_view(db, profile)["summary"]["event_count"] == 20


def test_rest_api_needs_a_token_and_answers_errors_in_one_shape(http: httpx.Client, db: Database) -> None:
    response = http.get("/api/v1/profiles", params={"q": "x"})
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "details"}
    token = make_token(db)
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get("/api/v1/profiles/nope", headers=headers).status_code == 404
    bad = http.get("/api/v1/profiles/lookup", params={"email": "nope"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "email"
    assert http.get("/api/v1/profiles/lookup", params={"colour": "red"}, headers=headers).status_code == 400
    assert http.get("/api/v1/profiles", params={"q": "x", "limit": 0}, headers=headers).status_code == 400


def test_rest_profile_timeline_paging_and_merged_ids(http: httpx.Client, db: Database, web_key: str) -> None:
    token = make_token(db)
    headers = {"Authorization": f"Bearer {token}"}
    http.post(
        "/v1/batch",
        auth=(web_key, ""),
        json={
            "batch": [
                {
                    "type": "page",
                    "anonymousId": "anon",
                    "name": f"P{i}",
                    "timestamp": f"2026-01-01T00:00:{i:02d}Z",
                }
                for i in range(7)
            ]
        },
    )
    http.post("/v1/identify", auth=(web_key, ""), json={"userId": "u1", "traits": {"name": "Ada Lovelace"}})
    anon_profile = http.get(
        "/api/v1/profiles/lookup", params={"anonymous_id": "anon"}, headers=headers
    ).json()["id"]
    http.post("/v1/identify", auth=(web_key, ""), json={"userId": "u1", "anonymousId": "anon"})
    found = http.get("/api/v1/profiles", params={"q": "lovelace"}, headers=headers).json()["profiles"]
    assert len(found) == 1
    survivor = found[0]["id"]
    merged_away = http.get(f"/api/v1/profiles/{anon_profile}", headers=headers)
    if anon_profile != survivor:
        assert merged_away.headers["Content-Location"] == f"/api/v1/profiles/{survivor}"
    assert merged_away.json()["id"] == survivor
    names, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = http.get(f"/api/v1/profiles/{survivor}/events", params=params, headers=headers).json()
        names += [e["name"] for e in page["events"] if e["type"] == "page"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert names == [f"P{i}" for i in reversed(range(7))]
    assert http.get("/openapi.json").json()["paths"]["/api/v1/profiles/{profile_id}/events"]


def test_quarantine_is_listed_for_admins_only(http: httpx.Client, db: Database, web_key: str) -> None:
    http.post("/v1/identify", auth=(web_key, ""), json={"userId": "u", "traits": {"email": "x"}})
    admin = {"Authorization": f"Bearer {make_token(db)}"}
    agent = {"Authorization": f"Bearer {make_token(db, 'agent@example.com', 'agent')}"}
    [entry] = http.get("/api/v1/quarantine", headers=admin).json()["messages"]
    assert entry["field"] == "traits.email" and entry["source"] == "website"
    assert http.get("/api/v1/quarantine", headers=agent).status_code == 403


def test_a_retried_invalid_message_is_quarantined_once(
    http: httpx.Client, web_key: str, db: Database
) -> None:
    bad = {"userId": "u", "traits": {"email": "x"}, "messageId": "retry-1"}
    for _ in range(3):
        assert http.post("/v1/identify", json=bad, auth=(web_key, "")).status_code == 400
    changed = {**bad, "traits": {"email": "y"}}
    http.post("/v1/identify", json=changed, auth=(web_key, ""))
    assert len(list_quarantine(db)) == 2
