"""Personal data masked for roles without the pii permission, on every surface: list, search, 360 page,
REST profile, timeline and trait history, CSV export. Also: exports need the export permission and are
audited."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send
from tests.test_web_pages import sign_in
from threadline.config import Settings
from threadline.privacy import mask_email, mask_phone, search_audit
from threadline.privacy.masking import mask_identifier, mask_trait
from threadline.profiles import share_customer
from threadline.storage import Database
from threadline.storage.models import User

ROLES = ("admin", "manager", "agent", "analyst")
PHONE, MASKED_PHONE = "+8613812348000", "+86 138****8000"
EMAIL, MASKED_EMAIL = "jane.doe@example.com", "j***@example.com"


def test_masks_keep_a_hint_and_hide_the_rest() -> None:
    assert mask_phone("13812348000") == "138****8000"
    assert mask_phone(PHONE) == MASKED_PHONE
    assert mask_phone("+14155550100") == "+1 415***0100"
    assert mask_email(EMAIL) == MASKED_EMAIL
    assert mask_trait("name", "Zhang Wei") == "Z**"
    assert mask_trait("birthday", "1990-05-01") == "****"
    assert mask_trait("address", {"city": "Shanghai"}) == "****"
    assert mask_identifier("loyalty_id", "LOY-000123456") == "****3456"
    assert mask_identifier("user_id", "u-1") == "****"


TOKENS: dict[str, str] = {}


@pytest.fixture
def customer(db: Database, settings: Settings) -> str:
    """Jane, with an email, a phone, a birthday and a plan; seen by every role (shared with the manager
    and the agent, whose scopes are narrower)."""
    for role in ROLES:
        TOKENS[role] = make_token(db, f"{role}@example.com", role)
    web = make_source(db, "website", "web")
    send(
        db,
        settings,
        web,
        {
            "type": "identify",
            "userId": "u-jane-0001",
            "traits": {"name": "Jane Doe", "email": EMAIL, "phone": PHONE, "birthday": "1990-05-01"},
            "context": {"ip": "203.0.113.9"},
        },
        {"type": "identify", "userId": "u-jane-0001", "traits": {"birthday": "1990-05-02", "plan": "pro"}},
        {"type": "track", "userId": "u-jane-0001", "event": "Signed Up", "properties": {"email": EMAIL}},
    )
    profile_id = lookup_profile(db, "user_id", "u-jane-0001")
    with db.read() as session:
        users = {u.email: u.id for u in session.query(User)}
    for role in ("manager", "agent"):
        share_customer(db, SYSTEM, profile_id, users[f"{role}@example.com"], "read")
    return profile_id


def _api(http: httpx.Client, db: Database, role: str, path: str) -> httpx.Response:
    return http.get(path, headers={"Authorization": f"Bearer {TOKENS[role]}"})


@pytest.mark.parametrize("role", ROLES)
def test_rest_profile_timeline_history_and_search(
    http: httpx.Client, db: Database, customer: str, role: str
) -> None:
    masked = role == "analyst"
    bodies = [
        _api(http, db, role, f"/api/v1/profiles/{customer}"),
        _api(http, db, role, f"/api/v1/profiles/{customer}/events"),
        _api(http, db, role, f"/api/v1/profiles/{customer}/traits/history"),
        _api(http, db, role, "/api/v1/profiles?q=Jane"),
        _api(http, db, role, "/api/v1/profiles/lookup?user_id=u-jane-0001"),
    ]
    for response in bodies:
        assert response.status_code == 200, response.text
    everything = "".join(response.text for response in bodies)
    for secret in (EMAIL, PHONE, "1990-05-01", "Jane Doe", "203.0.113.9", "u-jane-0001"):
        assert (secret in everything) is not masked, (role, secret)
    profile = bodies[0].json()
    if masked:
        assert profile["traits"]["email"] == MASKED_EMAIL
        assert profile["traits"]["phone"] == MASKED_PHONE
        assert profile["traits"]["birthday"] == "****"
        assert profile["traits"]["plan"] == "pro"  # not personal: reports need it
        assert profile["display_name"] == "J**"
        assert {i["value"] for i in profile["identities"]} >= {MASKED_EMAIL, MASKED_PHONE}
        assert bodies[3].json()["profiles"][0]["email"] == MASKED_EMAIL
    else:
        assert profile["traits"]["email"] == EMAIL and profile["traits"]["phone"] == PHONE


@pytest.mark.parametrize("role", ROLES)
def test_customer_list_search_and_360_page(
    http: httpx.Client, db: Database, customer: str, role: str
) -> None:
    masked = role == "analyst"
    sign_in(http, f"{role}@example.com")
    pages = [http.get("/customers"), http.get("/customers?q=Jane"), http.get(f"/customers/{customer}")]
    pages.append(http.get(f"/customers/{customer}/timeline"))
    for page in pages:
        assert page.status_code == 200
    everything = "".join(page.text for page in pages)
    for secret in (EMAIL, "1990-05-01", "Jane Doe"):
        assert (secret in everything) is not masked, (role, secret)
    note = "Personal data is masked for your role."
    assert [note in page.text for page in pages[:3]] == [masked] * 3
    if masked:
        assert MASKED_EMAIL in pages[0].text and MASKED_PHONE in pages[2].text
        assert PHONE not in pages[2].text and "13812348000" not in pages[2].text
    else:
        assert PHONE in pages[2].text


@pytest.mark.parametrize("role", ROLES)
def test_export_needs_the_permission_is_masked_and_audited(
    http: httpx.Client, db: Database, customer: str, role: str
) -> None:
    sign_in(http, f"{role}@example.com")
    response = http.get("/customers/export.csv")
    if role == "agent":
        assert response.status_code == 403
        assert [e for e in search_audit(db, action="export")] == []
        return
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    if role == "analyst":
        assert (rows[0]["name"], rows[0]["email"], rows[0]["phone"]) == ("J**", MASKED_EMAIL, MASKED_PHONE)
        assert EMAIL not in response.text and PHONE not in response.text
    else:
        assert (rows[0]["name"], rows[0]["email"], rows[0]["phone"]) == ("Jane Doe", EMAIL, PHONE)
    [entry] = search_audit(db, action="export")
    assert entry.user_email == f"{role}@example.com" and entry.details["count"] == 1
    assert entry.details["masked"] is (role == "analyst")
