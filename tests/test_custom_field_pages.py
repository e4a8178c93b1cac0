"""Settings → Custom fields: an admin adds, changes and removes a field on the page, through the same
checks as the REST API (errors name the field, what was typed stays); other roles are refused."""

from __future__ import annotations

import httpx

from tests.factories import make_token
from tests.test_web_pages import csrf_of, sign_in
from threadline.accounts import create_user
from threadline.clock import utcnow
from threadline.sales import list_custom_fields
from threadline.storage import Database


def test_an_admin_manages_custom_fields_on_the_page(http: httpx.Client, db: Database) -> None:
    make_token(db, "admin@example.com", "admin")
    create_user(db, "rep@example.com", "agent", "correct horse battery", now=utcnow())
    sign_in(http)
    page = http.get("/settings/custom-fields")
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    new = {"csrf": csrf, "entity": "deal", "label": "Budget band", "key": "budget_band", "type": "select"}
    refused = http.post("/settings/custom-fields", data={**new, "options": ""})
    assert refused.status_code == 400 and "options: a select field needs at least one option" in refused.text
    assert 'value="Budget band"' in refused.text  # what was typed stays
    made = http.post(
        "/settings/custom-fields", data={**new, "options": "small, medium, large", "required": "on"}
    )
    assert made.status_code == 303
    [field] = list_custom_fields(db, "deal")
    assert (field.key, field.type, field.options, field.required) == (
        "budget_band", "select", ("small", "medium", "large"), True,
    )  # fmt: skip
    shown = http.get("/settings/custom-fields").text
    assert (
        'data-field="budget_band"' in shown
        and "Custom field saved." in http.get(made.headers["location"]).text
    )
    changed = http.post(
        f"/settings/custom-fields/{field.id}",
        data={"csrf": csrf, "label": "Budget", "type": "select", "options": "small, large", "position": "2"},
    )
    assert changed.status_code == 303
    [field] = list_custom_fields(db, "deal")
    assert (field.label, field.options, field.required, field.position) == (
        "Budget",
        ("small", "large"),
        False,
        2,
    )
    duplicate = http.post("/settings/custom-fields", data={**new, "options": "a"})
    assert duplicate.status_code == 400 and "key: deal already has a field" in duplicate.text

    http.cookies.clear()
    sign_in(http, "rep@example.com")
    assert http.get("/settings/custom-fields").status_code == 403
    token = csrf_of(http.get("/customers").text)
    assert http.post(f"/settings/custom-fields/{field.id}/delete", data={"csrf": token}).status_code == 403

    http.cookies.clear()
    sign_in(http)
    token = csrf_of(http.get("/settings/custom-fields").text)
    gone = http.post(f"/settings/custom-fields/{field.id}/delete", data={"csrf": token})
    assert gone.status_code == 303 and list_custom_fields(db, "deal") == []
