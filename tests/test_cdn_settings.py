"""The analytics.js source-settings endpoint that stands in for Segment's CDN."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import make_source
from threadline.storage import Database


@pytest.fixture
def client(http: httpx.Client) -> httpx.Client:
    return http


def test_settings_point_analytics_js_back_at_this_server(client: httpx.Client, db: Database) -> None:
    key = make_source(db).write_key
    response = client.get(f"/v1/projects/{key}/settings", headers={"Origin": "https://shop.example.com"})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert "max-age" in response.headers["cache-control"]
    segmentio = response.json()["integrations"]["Segment.io"]
    assert segmentio["apiKey"] == key  # analytics.js sends it as each body's writeKey
    assert segmentio["apiHost"] == f"{client.base_url.netloc.decode()}/v1"
    assert segmentio["protocol"] == "http"
    assert response.json()["metrics"]["sampleRate"] == 0  # nothing goes to api.segment.io

    public = client.get(f"/v1/projects/{key}/settings", headers={"Host": "threadline.example.com"})
    assert public.json()["integrations"]["Segment.io"]["apiHost"] == "threadline.example.com/v1"


def test_unknown_write_key_is_not_found(client: httpx.Client) -> None:
    response = client.get("/v1/projects/not-a-key/settings")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
