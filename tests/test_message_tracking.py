"""Email open and click tracking end to end: the worker sends through a real SMTP server (aiosmtpd), the
received email's image and links are fetched over real HTTP without a login, and the timeline, the
delivery log and the redirect's target say what happened. Real SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import LiveServer, free_port
from tests.factories import SYSTEM
from tests.test_messaging import (
    T0,
    Mailbox,
    MovableClock,
    ask,
    customer,
    row,
    run_worker,
    say,
    timeline_events,
    with_relay,
)
from threadline.config import Settings
from threadline.messaging import SENT, delivery_log
from threadline.messaging.tracking import PIXEL_GIF, click_token, tracking_key
from threadline.storage import Database

PUBLIC = "https://crm.shop.example"  # the proxy in front of Threadline; tests fetch the live server
HTML = (
    "<html><body><p>Hello {{ traits.first_name }},</p>"
    '<p><a href="https://shop.example/sale?utm=mail&amp;c=1">The sale</a> · '
    "<a class='x' href='https://shop.example/tea'>Tea</a> · "
    '<a href="mailto:help@shop.example">Write to us</a></p></body></html>'
)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def mail(settings: Settings, mailbox: tuple[Mailbox, int]) -> Settings:
    return with_relay(settings, mailbox[1], public_url=PUBLIC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def web(mail: Settings, db: Database, clock: MovableClock) -> Iterator[httpx.Client]:
    """A customer's mail client: no session, no cookies; public links reach the live server."""
    with LiveServer(mail, db, clock=clock) as live, httpx.Client(timeout=30) as client:
        client.event_hooks["request"] = [lambda request: _to_live(request, live.url)]
        yield client


def _to_live(request: httpx.Request, live_url: str) -> None:
    if str(request.url).startswith(PUBLIC):
        request.url = httpx.URL(live_url + str(request.url)[len(PUBLIC) :])


def sent_html(box: Mailbox) -> str:
    _, received = box.received[-1]
    part = received.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def links_in(html: str) -> list[str]:
    return [m.group(2) for m in re.finditer(r"""href=(["'])([^"']*)\1""", html)]


def test_a_tracked_email_records_opens_and_clicks_once_and_redirects_to_its_own_links(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock, web: httpx.Client
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    for purpose in ("marketing", "analytics"):
        say(db, ann, T0 - timedelta(days=1), purpose, "email", "granted")
    message_id = ask(
        db, mail, ann, subject="Sale", body_text="The sale: https://shop.example/sale", body_html=HTML
    )
    run_worker(db, mail, clock)
    assert row(db, message_id).status == SENT and row(db, message_id).tracked

    html = sent_html(box)
    _, received = box.received[-1]
    unsubscribe = received["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith(f"{PUBLIC}/unsubscribe/")  # never through a redirect
    hrefs = links_in(html)
    clicks = [h for h in hrefs if h.startswith(f"{PUBLIC}/email/click/")]
    assert len(clicks) == 2
    assert "mailto:help@shop.example" in hrefs and unsubscribe in hrefs  # as written
    assert "shop.example/sale" not in html and "shop.example/tea" not in html  # only redirects remain
    text = received.get_body(("plain",))
    assert text is not None and "https://shop.example/sale" in text.get_content()  # the text part as written
    pixel = html.split(f'<img src="{PUBLIC}/email/open/')[1].split('"')[0]

    clock.advance(hours=2)
    opened = web.get(f"{PUBLIC}/email/open/{pixel}")
    assert opened.status_code == 200 and opened.content == PIXEL_GIF
    assert opened.headers["content-type"] == "image/gif" and "no-store" in opened.headers["cache-control"]
    assert row(db, message_id).first_opened_at == T0 + timedelta(hours=2)

    clock.advance(hours=1)
    web.get(f"{PUBLIC}/email/open/{pixel}")  # a mail privacy proxy fetching again
    assert row(db, message_id).first_opened_at == T0 + timedelta(hours=2)
    followed = web.get(clicks[0].replace("&amp;", "&"), follow_redirects=False)
    assert followed.status_code == 302
    assert followed.headers["location"] == "https://shop.example/sale?utm=mail&c=1"
    web.get(clicks[0].replace("&amp;", "&"), follow_redirects=False)  # clicked twice
    assert web.get(clicks[1], follow_redirects=False).headers["location"] == "https://shop.example/tea"

    events = [(e["event"], e["properties"].get("link_url")) for e in timeline_events(db, ann)]
    assert sorted(events, key=str) == sorted(
        [
            ("Email Sent", None),
            ("Email Opened", None),
            ("Email Link Clicked", "https://shop.example/sale?utm=mail&c=1"),
            ("Email Link Clicked", "https://shop.example/tea"),
        ],
        key=str,
    )
    assert all(e["channel"] == "email" for e in timeline_events(db, ann))
    _, log = delivery_log(db, ann, viewer=SYSTEM)
    assert (log[0].first_opened_at, log[0].first_clicked_at) == (
        T0 + timedelta(hours=2),
        T0 + timedelta(hours=3),
    )
    assert log[0].as_dict(reveal=False)["first_clicked_at"] == "2026-03-01T12:00:00.000Z"


def test_a_click_goes_only_to_a_link_of_the_message_no_open_redirect(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock, web: httpx.Client
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    for purpose in ("marketing", "analytics"):
        say(db, ann, T0 - timedelta(days=1), purpose, "email", "granted")
    message_id = ask(db, mail, ann, subject="Sale", body_text="x", body_html=HTML)
    other_id = ask(
        db, mail, ann, subject="Other", body_text="x", body_html='<a href="https://else.example/">x</a>'
    )
    run_worker(db, mail, clock)
    first_html = box.received[0][1].get_body(("html",))
    assert first_html is not None
    token = next(h for h in links_in(str(first_html.get_content())) if "/email/click/" in h).rsplit("/", 1)[1]

    msg, digest, signature = token.split(".")
    # Another URL's hash under the same signature, another message's id: forged, 400.
    forged = [f"{msg}.AAAAAAAAAAAA.{signature}", f"{other_id}.{digest}.{signature}", f"{msg}.{digest}", "x"]
    for bad in forged:
        answer = web.get(f"{PUBLIC}/email/click/{bad}", follow_redirects=False)
        assert answer.status_code == 400 and "location" not in answer.headers
    # Even a correctly signed token (which only Threadline can make) leads nowhere but the message's links.
    with db.write() as session:
        key = tracking_key(session.connection(), mail)
    evil = click_token(key, message_id, "https://evil.example/login")
    assert web.get(f"{PUBLIC}/email/click/{evil}", follow_redirects=False).status_code == 404
    # A forged image token still answers the image, and records nothing.
    assert web.get(f"{PUBLIC}/email/open/{msg}.{signature}.gif").content == PIXEL_GIF
    assert row(db, message_id).first_opened_at is None
    assert [e["event"] for e in timeline_events(db, ann)] == ["Email Sent", "Email Sent"]


def test_without_analytics_consent_or_with_tracking_off_nothing_is_tracked(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock, web: httpx.Client
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    say(db, ann, T0 - timedelta(days=1), "marketing", "email", "granted")
    say(db, ann, T0 - timedelta(days=1), "analytics", "email", "denied")
    untracked = ask(db, mail, ann, subject="Sale", body_text="x", body_html=HTML)
    run_worker(db, mail, clock)
    html = sent_html(box)
    assert "/email/" not in html and "https://shop.example/sale?utm=mail&amp;c=1" in html
    assert not row(db, untracked).tracked

    bob = customer(db, mail, "bob", email="bob@example.com", first_name="Bob")
    for purpose in ("marketing", "analytics"):
        say(db, bob, T0 - timedelta(days=1), purpose, "email", "granted")
    off = mail.model_copy(update={"email_tracking": False})
    ask(db, off, bob, subject="Sale", body_text="x", body_html=HTML)
    run_worker(db, off, clock)
    assert "/email/" not in sent_html(box)

    # Tracked when sent; analytics consent withdrawn since: the link still works, nothing is recorded.
    tracked = ask(db, mail, bob, subject="Sale", body_text="x", body_html=HTML, now=clock())
    run_worker(db, mail, clock)
    html = sent_html(box)
    assert row(db, tracked).tracked
    say(db, bob, T0 + timedelta(minutes=5), "analytics", "all", "withdrawn")
    click = next(h for h in links_in(html) if "/email/click/" in h).replace("&amp;", "&")
    answer = web.get(click, follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"].startswith("https://shop.example/")
    pixel = html.split(f'<img src="{PUBLIC}/email/open/')[1].split('"')[0]
    assert web.get(f"{PUBLIC}/email/open/{pixel}").status_code == 200
    assert (row(db, tracked).first_opened_at, row(db, tracked).first_clicked_at) == (None, None)
    assert {e["event"] for e in timeline_events(db, bob)} == {"Email Sent"}


def test_a_text_only_email_gets_the_image_and_a_service_reply_is_tracked_too(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock, web: httpx.Client
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    say(db, ann, T0 - timedelta(days=1), "analytics", "email", "granted")
    message_id = ask(db, mail, ann, "service", subject="Your order", body_text="It ships today.")
    run_worker(db, mail, clock)
    html = sent_html(box)
    assert "It ships today." in html and f'<img src="{PUBLIC}/email/open/' in html
    assert "unsubscribe" not in html.lower()  # service: no footer, as before
    pixel = html.split(f'<img src="{PUBLIC}/email/open/')[1].split('"')[0]
    web.get(f"{PUBLIC}/email/open/{pixel}")
    assert row(db, message_id).first_opened_at == T0
    assert [e["event"] for e in timeline_events(db, ann)] == ["Email Opened", "Email Sent"]
