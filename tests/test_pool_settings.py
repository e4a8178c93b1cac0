"""Settings → Customer pool: admins set the return rules on a page, through the same check as the API;
bad days name the field and keep what was typed; other roles are refused."""

from __future__ import annotations

import httpx

from tests.factories import make_token
from tests.test_web_pages import csrf_of, sign_in
from threadline.accounts import create_user
from threadline.clock import utcnow
from threadline.sales import get_pool_rules
from threadline.storage import Database


def test_an_admin_sets_the_pool_rules_on_the_page(http: httpx.Client, db: Database) -> None:
    make_token(db, "admin@example.com", "admin")
    create_user(db, "rep@example.com", "agent", "correct horse battery", now=utcnow())
    sign_in(http)
    page = http.get("/settings/pool")
    assert page.status_code == 200
    form = {
        "csrf": csrf_of(page.text),
        "level": ["A", "*", ""],
        "no_follow_up_days": ["30", "15", ""],
        "no_won_deal_days": ["", "90", ""],
        "warning_days": "5",
        "cooldown_days": "10",
        "cap": "200",
    }
    saved = http.post("/settings/pool", data=form)
    assert saved.status_code == 303
    assert "Pool rules saved" in http.get(saved.headers["location"]).text
    assert get_pool_rules(db).as_json() == {
        "levels": {
            "A": {"no_follow_up_days": 30, "no_won_deal_days": None},
            "*": {"no_follow_up_days": 15, "no_won_deal_days": 90},
        },
        "warning_days": 5,
        "cooldown_days": 10,
        "cap": 200,
    }
    shown = http.get("/settings/pool").text
    assert 'value="A"' in shown and 'value="200"' in shown

    bad = http.post("/settings/pool", data={**form, "no_follow_up_days": ["thirty", "15", ""]})
    assert bad.status_code == 400 and "levels.A.no_follow_up_days" in bad.text
    assert 'value="thirty"' in bad.text  # what was typed stays
    assert get_pool_rules(db).levels["A"].no_follow_up_days == 30  # nothing half-saved

    http.cookies.clear()
    sign_in(http, "rep@example.com")
    assert http.get("/settings/pool").status_code == 403
    token = csrf_of(http.get("/customers").text)
    assert http.post("/settings/pool", data={**form, "csrf": token, "cap": "1"}).status_code == 403
    assert get_pool_rules(db).cap == 200
