"""The email channel end to end, with real SMTP both ways: smtplib sends to our inbound server (aiosmtpd,
through InboundMailServer), agents answer through threadline.messaging to a second aiosmtpd sink, and the
customer's answer threads back. Conversations, scope, the REST API and the inbox pages on top."""

from __future__ import annotations

import base64
import re
import smtplib
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import LiveServer, free_port
from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send, timeline_page
from tests.test_messaging import Mailbox, MovableClock, with_relay
from threadline.accounts import viewer_for
from threadline.config import Settings
from threadline.ingest import list_quarantine
from threadline.jobs import Worker, handlers
from threadline.messaging import JOB_KIND, delivery_log
from threadline.privacy import search_audit
from threadline.profiles import assign_owner
from threadline.service import (
    InboundMailServer,
    change_conversation,
    get_conversation,
    list_conversations,
    reply,
    set_canned_replies,
)
from threadline.storage import Database
from threadline.storage.models import Conversation, User

T0 = datetime(2026, 3, 2, 9, 0)
SUPPORT = "support@shop.example"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def sink() -> Iterator[tuple[Mailbox, int]]:
    """The relay our replies go to: what the customer's mailbox would receive."""
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def mail(settings: Settings, sink: tuple[Mailbox, int]) -> Settings:
    relayed = with_relay(settings, sink[1])
    return relayed.model_copy(
        update={"inbound_addresses": [SUPPORT, "@help.shop.example"], "max_attachment_bytes": 1000}
    )


@pytest.fixture
def inbound(db: Database, mail: Settings, clock: MovableClock) -> Iterator[InboundMailServer]:
    with InboundMailServer(db, mail, host="127.0.0.1", port=free_port(), clock=clock) as server:
        yield server


def deliver(
    server: InboundMailServer, message: EmailMessage | bytes, sender: str = "", to: str = SUPPORT
) -> None:
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        if isinstance(message, bytes):
            client.sendmail(sender, [to], message)
        else:
            client.send_message(message, from_addr=sender or None, to_addrs=[to])


def email(sender: str, subject: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = SUPPORT
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def conversations(db: Database) -> list[Conversation]:
    with db.read() as session:
        rows = list(session.scalars(select(Conversation).order_by(Conversation.id)))
        for row in rows:
            session.expunge(row)
        return rows


def run_worker(db: Database, settings: Settings, clock: MovableClock) -> list[str]:
    worker = Worker(db, settings, clock=clock, kinds={JOB_KIND: handlers()[JOB_KIND]}, schedules=[])
    return [outcome.status for outcome in worker.run_until_idle()]


# -- inbound -------------------------------------------------------------------------------------------
def test_a_plain_email_becomes_a_customer_a_conversation_and_a_timeline_event(
    db: Database, inbound: InboundMailServer
) -> None:
    deliver(
        inbound,
        email(
            "Ann Lee <Ann@Example.com>",
            "Where is my order?",
            "It has not come.\n",
            Message_ID="<q1@example.com>",
        ),
    )
    profile_id = lookup_profile(db, "email", "ann@example.com")
    [conversation] = conversations(db)
    assert (conversation.profile_id, conversation.channel, conversation.status) == (
        profile_id,
        "email",
        "open",
    )
    assert conversation.subject == "Where is my order?" and conversation.thread_key == "<q1@example.com>"
    detail = get_conversation(db, SYSTEM, conversation.id)
    [entry] = detail.entries
    assert (entry.direction, entry.sender, entry.body_text) == ("in", "Ann@Example.com", "It has not come.\n")
    events = timeline_page(db, profile_id)["events"]
    assert [(e["event"], e["channel"]) for e in events] == [("Email Received", "email")]
    assert events[0]["properties"]["subject"] == "Where is my order?"

    # The relay delivering it again adds nothing.
    deliver(
        inbound,
        email(
            "Ann Lee <ann@example.com>",
            "Where is my order?",
            "It has not come.\n",
            Message_ID="<q1@example.com>",
        ),
    )
    assert len(get_conversation(db, SYSTEM, conversation.id).entries) == 1
    assert len(timeline_page(db, profile_id)["events"]) == 1


def _b64(text: str, charset: str) -> str:
    return base64.b64encode(text.encode(charset)).decode()


def test_a_chinese_gbk_email_with_encoded_subject_and_attachments(
    db: Database, inbound: InboundMailServer
) -> None:
    # Labelled GB2312 but holding GBK characters (镕), as Chinese mail clients often send it.
    big = base64.encodebytes(b"x" * 2000).decode().replace("\n", "\r\n")
    invoice = _b64("发票.pdf", "gbk")
    raw = (
        f"From: =?gbk?B?{_b64('李伟', 'gbk')}?= <liwei@example.cn>\r\n"
        f"To: {SUPPORT}\r\n"
        f"Subject: =?gb2312?B?{_b64('关于订单的问题：朱镕', 'gbk')}?=\r\n"
        "Message-ID: <cn1@example.cn>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        "--XX\r\nContent-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{_b64('您好，我的订单还没到。朱镕', 'gbk')}\r\n"
        "--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{_b64('<p>您好</p>', 'utf-8')}\r\n"
        "--XX\r\nContent-Type: application/pdf\r\n"
        f'Content-Disposition: attachment; filename="=?gbk?B?{invoice}?="\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        '--XX\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename="big.png"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{big}\r\n"
        "--XX--\r\n"
    ).encode("ascii")
    deliver(inbound, raw, sender="liwei@example.cn")
    [conversation] = conversations(db)
    assert conversation.subject == "关于订单的问题：朱镕"
    [entry] = get_conversation(db, SYSTEM, conversation.id).entries
    assert entry.body_text == "您好，我的订单还没到。朱镕" and entry.body_html == "<p>您好</p>"
    pdf, png = entry.attachments
    assert (pdf.filename, pdf.content_type, pdf.size, pdf.kept) == ("发票.pdf", "application/pdf", 9, True)
    # Over THREADLINE_MAX_ATTACHMENT_BYTES (1000 here): recorded by name and size, the message still in.
    assert (png.filename, png.size, png.kept) == ("big.png", 2000, False)
    assert lookup_profile(db, "email", "liwei@example.cn") == conversation.profile_id


def test_malformed_mail_is_quarantined_and_strangers_are_refused(
    db: Database, inbound: InboundMailServer
) -> None:
    # No From header and a null envelope sender (a bounce): there is no one to attach it to.
    deliver(inbound, b"To: support@shop.example\r\nSubject: lost\r\n\r\nwho am I?\r\n", sender="")
    broken = (
        b"From: a@example.com\r\nTo: support@shop.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="nope"\r\n\r\nno parts at all\r\n'
    )
    deliver(inbound, broken, sender="a@example.com")
    assert conversations(db) == []
    kept = list_quarantine(db, source="Threadline service (email)")
    assert [q.reason for q in kept] == [
        "message: a multipart message whose parts cannot be found (no boundary)",
        "from: no sender address (neither a From header nor an envelope sender)",
    ]
    assert "who am I?" in kept[1].payload
    # A recipient that is not ours: refused at RCPT, nothing stored.
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        deliver(inbound, email("b@example.com", "hi", "hi"), to="sales@other.example")
    deliver(inbound, email("b@example.com", "hi", "hi"), to="billing@help.shop.example")  # a listed domain
    assert len(conversations(db)) == 1


def test_reply_threads_both_ways_and_a_resolved_conversation_reopens(
    db: Database, mail: Settings, inbound: InboundMailServer, sink: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = sink
    deliver(inbound, email("ann@example.com", "Broken kettle", "It leaks.", Message_ID="<k1@example.com>"))
    [conversation] = conversations(db)
    clock.advance(minutes=5)
    make_token(db, "agent@example.com", "agent")
    with db.read() as session:
        agent_id = session.scalar(select(User.id).where(User.email == "agent@example.com"))
    assert agent_id is not None
    admin = viewer_for(db, agent_id, "admin")  # sees every conversation
    reply(
        db,
        mail,
        admin,
        conversation.id,
        body_text="Sorry! A new one is on its way.",
        author_user_id=agent_id,
        now=clock(),
    )
    assert run_worker(db, mail, clock) == ["done"]
    [(recipients, sent)] = box.received
    assert recipients == ["ann@example.com"]
    assert sent["Subject"] == "Re: Broken kettle"
    assert sent["In-Reply-To"] == "<k1@example.com>" and sent["References"] == "<k1@example.com>"
    agent_message_id = sent["Message-ID"]
    after = conversations(db)[0]
    assert after.first_response_at == clock() and after.assignee_id == agent_id

    # The customer answers the agent's email: same conversation.
    clock.advance(minutes=5)
    deliver(
        inbound,
        email(
            "ann@example.com",
            "Re: Broken kettle",
            "Thanks!",
            Message_ID="<k2@example.com>",
            In_Reply_To=agent_message_id,
            References=f"<k1@example.com> {agent_message_id}",
        ),
    )
    assert len(conversations(db)) == 1
    detail = get_conversation(db, SYSTEM, conversation.id)
    assert [e.direction for e in detail.entries] == ["in", "out", "in"]
    assert detail.entries[1].delivery_status == "sent"

    # Resolved, then the customer writes again: reopened.
    change_conversation(db, admin, conversation.id, status="resolved", now=clock())
    clock.advance(hours=1)
    deliver(
        inbound,
        email(
            "ann@example.com",
            "Re: Broken kettle",
            "Still leaks",
            Message_ID="<k3@example.com>",
            In_Reply_To="<k2@example.com>",
        ),
    )
    reopened = conversations(db)
    assert len(reopened) == 1 and (reopened[0].status, reopened[0].reopened) == ("open", 1)
    assert reopened[0].resolved_at is None

    # The next reply's References carry the root and the thread's latest ids.
    reply(db, mail, admin, conversation.id, body_text="Replacing it.", author_user_id=agent_id, now=clock())
    run_worker(db, mail, clock)
    second = box.received[-1][1]
    assert second["In-Reply-To"] == "<k3@example.com>"
    assert second["References"].split() == [
        "<k1@example.com>",
        agent_message_id,
        "<k2@example.com>",
        "<k3@example.com>",
    ]
    # Every message is on the customer's timeline: two sent, three received.
    names = [e["event"] for e in timeline_page(db, conversation.profile_id)["events"]]
    assert sorted(names) == ["Email Received"] * 3 + ["Email Sent"] * 2

    # A reply that promotes is marketing: without her marketing consent it is refused, nothing goes out.
    received = len(box.received)
    reply(
        db,
        mail,
        admin,
        conversation.id,
        body_text="20% off descaler!",
        author_user_id=agent_id,
        now=clock(),
        purpose="marketing",
    )
    run_worker(db, mail, clock)
    assert len(box.received) == received
    _, log = delivery_log(db, conversation.profile_id, viewer=SYSTEM)
    assert (log[0].purpose, log[0].status) == ("marketing", "refused")


def test_a_web_visitor_who_writes_by_email_is_one_customer(
    db: Database, mail: Settings, inbound: InboundMailServer
) -> None:
    web = make_source(db)
    send(db, mail, web, {"type": "page", "anonymousId": "anon-7", "name": "Kettles"})
    send(db, mail, web, {"type": "identify", "anonymousId": "anon-7", "traits": {"email": "zoe@example.com"}})
    deliver(inbound, email("Zoe <zoe@example.com>", "Question", "Which kettle?"))
    profile_id = lookup_profile(db, "anonymous_id", "anon-7")
    assert lookup_profile(db, "email", "zoe@example.com") == profile_id
    assert conversations(db)[0].profile_id == profile_id
    channels = {e["channel"] for e in timeline_page(db, profile_id)["events"]}
    assert channels == {"web", "email"}


# -- scope, REST, pages --------------------------------------------------------------------------------
class Desk:
    """Two agents with a customer each who wrote in, and an analyst."""

    def __init__(self, db: Database, settings: Settings, server: InboundMailServer) -> None:
        self.db = db
        self.tokens = {
            n: make_token(db, f"{n}@example.com", n.rstrip("12"))
            for n in ("admin", "agent1", "agent2", "analyst")
        }
        with db.read() as session:
            self.ids = {u.email.split("@")[0]: u.id for u in session.scalars(select(User))}
        with db.write() as session:
            session.get(User, self.ids["agent1"]).name = "Li Wei"  # type: ignore[union-attr]
        for n in (1, 2):
            deliver(
                server,
                email(f"c{n}@example.com", f"Help {n}", f"Question {n}", Message_ID=f"<c{n}@example.com>"),
            )
        rows = conversations(db)
        self.conversations = {1: rows[0].id, 2: rows[1].id}
        self.customers = {1: rows[0].profile_id, 2: rows[1].profile_id}
        admin = viewer_for(db, self.ids["admin"], "admin")
        assign_owner(db, admin, [self.customers[1]], self.ids["agent1"])
        assign_owner(db, admin, [self.customers[2]], self.ids["agent2"])

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
def desk(db: Database, mail: Settings, inbound: InboundMailServer) -> Desk:
    return Desk(db, mail, inbound)


@pytest.fixture
def web(mail: Settings, db: Database, clock: MovableClock) -> Iterator[httpx.Client]:
    with LiveServer(mail, db, clock) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def test_the_rest_api_within_the_scope(desk: Desk, web: httpx.Client) -> None:
    mine, theirs = desk.conversations[1], desk.conversations[2]
    agent = desk.bearer("agent1")
    listed = web.get("/api/v1/conversations?queue=all", headers=agent).json()
    assert [c["id"] for c in listed["conversations"]] == [mine]
    assert listed["counts"] == {"unassigned": 1, "mine": 0, "team": 0, "all": 1}
    assert web.get(f"/api/v1/conversations/{theirs}", headers=agent).status_code == 404
    assert (
        web.post(f"/api/v1/conversations/{theirs}/notes", json={"body_text": "x"}, headers=agent).status_code
        == 404
    )

    one = web.get(f"/api/v1/conversations/{mine}", headers=agent).json()
    assert one["messages"][0]["body_text"] == "Question 1\n"
    replied = web.post(f"/api/v1/conversations/{mine}/replies", json={"body_text": "On it."}, headers=agent)
    assert replied.status_code == 201 and replied.json()["messages"][-1]["delivery_status"] == "queued"
    noted = web.post(
        f"/api/v1/conversations/{mine}/notes", json={"body_text": "VIP, be quick"}, headers=agent
    )
    assert noted.status_code == 201 and noted.json()["messages"][-1]["direction"] == "note"
    bad = web.patch(f"/api/v1/conversations/{mine}", json={"priority": "asap"}, headers=agent)
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "priority"
    changed = web.patch(
        f"/api/v1/conversations/{mine}", json={"status": "pending", "tags": ["billing", "vip"]}, headers=agent
    ).json()
    assert (changed["status"], changed["tags"]) == ("pending", ["billing", "vip"])
    assert web.get("/api/v1/conversations?status=pending&tag=vip", headers=agent).json()["counts"]["all"] == 1

    # Handing agent2's conversation to agent1 makes it theirs to see.
    admin = desk.bearer("admin")
    web.patch(f"/api/v1/conversations/{theirs}", json={"assignee_id": desk.ids["agent1"]}, headers=admin)
    assert web.get(f"/api/v1/conversations/{theirs}", headers=agent).status_code == 200
    # Analysts read, masked, and change nothing.
    analyst = desk.bearer("analyst")
    seen = web.get(f"/api/v1/conversations/{mine}", headers=analyst).json()
    assert seen["subject"] is None and seen["messages"][0]["body_text"] is None
    assert (
        web.post(f"/api/v1/conversations/{mine}/notes", json={"body_text": "x"}, headers=analyst).status_code
        == 403
    )

    audited = search_audit(desk.db, user_email="agent1@example.com")
    assert {"reply", "note", "update", "denied", "view"} <= {a.action for a in audited}
    assert all("On it" not in repr(a.details) and "VIP" not in repr(a.details) for a in audited)


def sign_in(http: httpx.Client, address: str) -> str:
    form = http.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    http.post("/login", data={"email": address, "password": "correct horse battery", "csrf": csrf.group(1)})
    page_csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/inbox").text)
    assert page_csrf
    return page_csrf.group(1)


def test_the_inbox_pages(
    desk: Desk, web: httpx.Client, mail: Settings, db: Database, clock: MovableClock
) -> None:
    mine, theirs = desk.conversations[1], desk.conversations[2]
    set_canned_replies(
        db,
        [{"title": "Hello", "body": "Hi {{ customer.first_name | default('there') }},"}],
        user_id=None,
        now=clock(),
    )
    csrf = sign_in(web, "agent1@example.com")
    inbox = web.get("/inbox?queue=all")
    assert inbox.status_code == 200 and "Help 1" in inbox.text and "Help 2" not in inbox.text
    assert 'href="/inbox"' in inbox.text  # the nav link
    page = web.get(f"/inbox/{mine}")
    assert page.status_code == 200 and "Question 1" in page.text and "Recent activity" in page.text
    assert "Email Received" in page.text  # the 360 side panel's activity
    assert web.get(f"/inbox/{theirs}").status_code == 404

    filled = web.get(f"/inbox/{mine}/canned?canned=0", headers={"HX-Request": "true"})
    assert "Hi there," in filled.text
    sent = web.post(
        f"/inbox/{mine}/reply", data={"csrf": csrf, "body_text": "We are on it."}, follow_redirects=False
    )
    assert sent.status_code == 303
    web.post(f"/inbox/{mine}/note", data={"csrf": csrf, "body_text": "Call her tomorrow"})
    web.post(
        f"/inbox/{mine}/change",
        data={"csrf": csrf, "status": "pending", "priority": "high", "tags": "kettle"},
    )
    page = web.get(f"/inbox/{mine}").text
    assert "We are on it." in page and "Call her tomorrow" in page and "internal note" in page
    assert "inbox-status-pending" in page and "kettle" in page
    empty = web.post(f"/inbox/{mine}/reply", data={"csrf": csrf, "body_text": " "})
    assert empty.status_code == 400 and "body_text: is required" in empty.text
    mine_queue = web.get("/inbox?queue=mine&status=pending").text
    assert "Help 1" in mine_queue

    # The 360 page's panel.
    panel = web.get(f"/customers/{desk.customers[1]}/conversations", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and f'href="/inbox/{mine}"' in panel.text
    assert (
        f'hx-get="/customers/{desk.customers[1]}/conversations"'
        in web.get(f"/customers/{desk.customers[1]}").text
    )


def test_attachments_download_audited_and_the_collision_warning(
    desk: Desk, web: httpx.Client, inbound: InboundMailServer, db: Database, mail: Settings
) -> None:
    message = email("c1@example.com", "Photo", "See attached", Message_ID="<p1@example.com>")
    message.add_attachment(b"\x89PNG tiny", maintype="image", subtype="png", filename="照片.png")
    deliver(inbound, message)
    newest = list_conversations(db, SYSTEM, queue="all").conversations[0]
    [entry] = get_conversation(db, SYSTEM, newest.id).entries
    [attachment] = entry.attachments
    csrf = sign_in(web, "agent1@example.com")
    download = web.get(f"/inbox/attachments/{attachment.id}")
    assert download.status_code == 200 and download.content == b"\x89PNG tiny"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert search_audit(db, user_email="agent1@example.com", action="download")

    # Two agents on the same conversation: each sees the other typing.
    conversation = desk.conversations[1]
    with httpx.Client(base_url=str(web.base_url), timeout=30) as other:
        other_csrf = sign_in(other, "admin@example.com")
        first = web.post(f"/inbox/{conversation}/typing", data={"csrf": csrf, "typing": "1"})
        assert first.status_code == 200 and "is replying" not in first.text
        second = other.post(f"/inbox/{conversation}/typing", data={"csrf": other_csrf, "typing": "1"})
        assert "Li Wei is replying" in second.text
        again = web.post(f"/inbox/{conversation}/typing", data={"csrf": csrf, "typing": "0"})
        assert "admin@example.com is replying" in again.text
    assert (
        web.post(f"/inbox/{desk.conversations[2]}/typing", data={"csrf": csrf, "typing": "1"}).status_code
        == 404
    )
