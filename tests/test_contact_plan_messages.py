"""Email contact plans: the plan's content goes to its audience through messaging (consent decides, once
per customer, within the window), a real SMTP server (aiosmtpd) receives it, and the plan counts it."""

# ruff: noqa: F811  (pytest fixtures imported from other test modules are parameters here)
from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.conftest import LiveServer
from tests.factories import SYSTEM
from tests.test_contact_plans import T0, WINDOW, owned, people, plan_args  # noqa: F401
from tests.test_messaging import Mailbox, mailbox, with_relay  # noqa: F401  (a fixture)
from tests.test_web_pages import csrf_of, sign_in
from threadline.accounts import create_token, viewer_for
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.jobs import Worker
from threadline.privacy import record_consent, statement
from threadline.sales import create_plan, plan_message_counts, send_plan_messages
from threadline.storage import Database

DURING = T0 + timedelta(days=1)


def consent(db: Database, profile_id: str, status: str = "granted") -> None:
    record_consent(db, SYSTEM, profile_id, [statement("marketing", "email", status)], source="test", now=T0)


def test_an_email_plan_sends_its_content_once_to_those_who_agreed(
    db: Database,
    settings: Settings,
    people: dict[str, int],
    mailbox: tuple[Mailbox, int],
) -> None:
    box, port = mailbox
    relay = with_relay(settings, port)
    ann = owned(db, relay, "ann@shop.example", people["agent"])
    bob = owned(db, relay, "bob@shop.example", people["agent"])
    cat = owned(db, relay, "cat@shop.example", people["other"])
    consent(db, ann)  # bob never agreed to marketing email: refused, nothing sent
    consent(db, cat)
    admin = viewer_for(db, people["admin"], "admin")
    plan = create_plan(
        db,
        admin,
        **plan_args(
            {"type": "list", "profile_ids": [ann, bob, cat]},
            channel="email",
            name="Spring offer",
            content="Hello {{ traits.email }}, 10% off this week.",
        ),
    )
    # The agent sends to their own customers; cat belongs to another rep.
    agent = viewer_for(db, people["agent"], "agent")
    counts = send_plan_messages(db, relay, agent, plan.id, now=DURING)
    assert counts == {"queued": 1, "refused": 1, "already_sent": 0, "no_address": 0, "not_in_your_scope": 1}
    Worker(db, relay, clock=lambda: DURING).run_until_idle()
    assert [rcpt for rcpt, _ in box.received] == [["ann@shop.example"]]
    message = box.received[0][1]
    assert message["Subject"] == "Spring offer"
    assert "Hello ann@shop.example, 10% off this week." in message.get_body(("plain",)).get_content()

    # Pressed again by the admin: ann and bob have theirs (sent, refused); cat gets one now.
    again = send_plan_messages(db, relay, admin, plan.id, now=DURING)
    assert again == {"queued": 1, "refused": 0, "already_sent": 2, "no_address": 0, "not_in_your_scope": 0}
    Worker(db, relay, clock=lambda: DURING).run_until_idle()
    assert sorted(rcpt[0] for rcpt, _ in box.received) == ["ann@shop.example", "cat@shop.example"]
    assert plan_message_counts(db, plan.id) == {"sent": 2, "refused": 1}


def test_only_message_channels_with_content_inside_the_window(
    db: Database,
    settings: Settings,
    people: dict[str, int],
) -> None:
    ann = owned(db, settings, "ann@shop.example", people["agent"])
    admin = viewer_for(db, people["admin"], "admin")
    phone = create_plan(db, admin, **plan_args({"type": "list", "profile_ids": [ann]}))
    empty = create_plan(
        db, admin, **plan_args({"type": "list", "profile_ids": [ann]}, channel="sms", content="")
    )
    email = create_plan(db, admin, **plan_args({"type": "list", "profile_ids": [ann]}, channel="email"))
    for plan_id, now, field in (
        (phone.id, DURING, "channel"),
        (empty.id, DURING, "content"),
        (email.id, WINDOW["ends_at"] + timedelta(minutes=1), "starts_at"),
    ):
        with pytest.raises(Invalid) as problem:
            send_plan_messages(db, settings, admin, plan_id, now=now)
        assert problem.value.details == {"field": field}
    analyst = viewer_for(db, people["analyst"], "analyst")
    with pytest.raises(Exception, match="may not send"):
        send_plan_messages(db, settings, analyst, email.id, now=DURING)


def test_the_api_and_the_page_send_and_count(
    db: Database,
    settings: Settings,
    people: dict[str, int],
) -> None:
    ann = owned(db, settings, "ann@shop.example", people["agent"])
    consent(db, ann)
    admin = viewer_for(db, people["admin"], "admin")
    plan = create_plan(db, admin, **plan_args({"type": "list", "profile_ids": [ann]}, channel="email"))
    token = create_token(db, "agent@example.com", now=T0)
    with LiveServer(settings, db, clock=lambda: DURING) as live, httpx.Client(base_url=live.url) as http:
        auth = {"Authorization": f"Bearer {token}"}
        sent = http.post(f"/api/v1/contact-plans/{plan.id}/messages", headers=auth)
        assert sent.status_code == 200, sent.text
        assert sent.json()["counts"]["queued"] == 1 and sent.json()["messages"] == {"queued": 1}
        assert http.get(f"/api/v1/contact-plans/{plan.id}", headers=auth).json()["messages"] == {"queued": 1}
        sign_in(http, "agent@example.com")
        page = http.get(f"/contact-plans/{plan.id}")
        assert 'data-status="queued"' in page.text
        again = http.post(f"/contact-plans/{plan.id}/messages", data={"csrf": csrf_of(page.text)})
        assert again.status_code == 303
        shown = http.get(again.headers["location"]).text
        assert "already sent: 1" in shown
