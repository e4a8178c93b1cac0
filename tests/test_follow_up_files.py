"""Files on follow-ups: attached through the API and on the 360 panel, listed and downloaded within the
follow-up's scope (and only with the pii permission), refused over the size limit naming the field with
nothing stored, exported and erased with the person."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import LiveServer
from tests.factories import SYSTEM
from tests.test_follow_ups import T0, account, customer, people  # noqa: F401  (people: a fixture)
from tests.test_web_pages import csrf_of, sign_in
from threadline.accounts import create_token, viewer_for
from threadline.config import Settings
from threadline.errors import Invalid, NotFound
from threadline.privacy import erase_person, export_person
from threadline.profiles import assign_owner
from threadline.sales import attach_file, follow_up_files, read_file, record_follow_up
from threadline.storage import Database
from threadline.storage.models import FollowUpFile


def test_files_on_a_follow_up_within_scope(db: Database, settings: Settings, people: dict[str, int]) -> None:  # noqa: F811
    small = settings.model_copy(update={"max_follow_up_file_bytes": 1000})
    profile = customer(db, small, "cy@shop.example")
    account_id = account(db, "Cy Co", people["agent"], profile)
    assign_owner(db, SYSTEM, [profile], people["agent"])  # the 360 panel is the customer's, in their scope
    token = create_token(db, "agent@example.com", now=T0)
    other = create_token(db, "other@example.com", now=T0)
    with LiveServer(small, db, clock=lambda: T0) as live, httpx.Client(base_url=live.url) as http:
        auth = {"Authorization": f"Bearer {token}"}
        body = {"subject_type": "account", "subject_id": str(account_id), "method": "visit", "content": "Met"}
        made = http.post("/api/v1/follow-ups", headers=auth, json=body).json()
        path = f"/api/v1/follow-ups/{made['id']}/files"
        quote = http.post(
            path,
            headers=auth,
            files={"file": ("C:\\\\quotes\\\\报价.pdf", b"%PDF-1.4 quote", "application/pdf")},
        )
        assert quote.status_code == 201, quote.text
        assert (quote.json()["filename"], quote.json()["size"]) == ("报价.pdf", 14)
        too_big = http.post(
            path, headers=auth, files={"file": ("big.bin", b"x" * 1001, "application/octet-stream")}
        )
        assert too_big.status_code == 400 and too_big.json()["error"]["details"] == {"field": "file"}
        listed = http.get(path, headers=auth).json()["files"]
        assert [f["filename"] for f in listed] == ["报价.pdf"]
        got = http.get(f"{path}/{listed[0]['id']}", headers=auth)
        assert got.content == b"%PDF-1.4 quote" and got.headers["x-content-type-options"] == "nosniff"
        assert "attachment" in got.headers["content-disposition"]
        hidden = {"Authorization": f"Bearer {other}"}
        assert http.get(path, headers=hidden).status_code == 404
        assert http.get(f"{path}/{listed[0]['id']}", headers=hidden).status_code == 404
        assert (
            http.post(path, headers=hidden, files={"file": ("x.txt", b"x", "text/plain")}).status_code == 404
        )

        # The 360 panel: record a follow-up with a file, see it listed, download it.
        sign_in(http, "agent@example.com")
        panel = http.get(f"/customers/{profile}/follow-ups")
        form = {"csrf": csrf_of(panel.text), "method": "phone", "content": "Sent the contract"}
        posted = http.post(
            f"/customers/{profile}/follow-ups",
            data=form,
            files={"file": ("contract.txt", b"signed", "text/plain")},
        )
        assert posted.status_code == 303
        shown = http.get(f"/customers/{profile}/follow-ups").text
        assert "contract.txt" in shown
        link = re.search(r'href="(/follow-ups/\d+/files/\d+)"', shown)
        assert link is not None and http.get(link.group(1)).content == b"signed"
        refused = http.post(
            f"/customers/{profile}/follow-ups",
            data=form,
            files={"file": ("big.bin", b"x" * 1001, "text/plain")},
        )
        assert refused.status_code == 400 and "over the limit" in refused.text
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(FollowUpFile)) == 2  # the big ones: none

    # Export hands the person their files' names; erasure removes the files.
    exported = export_person(db, profile)
    assert {f["filename"] for f in exported["follow_up_files"]} == {"报价.pdf", "contract.txt"}
    erase_person(db, settings, profile, now=T0)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(FollowUpFile)) == 0


def test_attach_checks_the_name_the_size_and_the_scope(
    db: Database,
    settings: Settings,
    people: dict[str, int],  # noqa: F811
) -> None:
    profile = customer(db, settings, "di@shop.example")
    account_id = account(db, "Di Co", people["agent"], profile)
    agent = viewer_for(db, people["agent"], "agent")
    view = record_follow_up(
        db,
        settings,
        agent,
        subject_type="account",
        subject_id=str(account_id),
        method="phone",
        content="x",
        now=T0,
    )
    assert view.id is not None
    for name, data in (("", b"x"), ("empty.txt", b"")):
        with pytest.raises(Invalid) as problem:
            attach_file(db, settings, agent, view.id, filename=name, content_type=None, data=data, now=T0)
        assert problem.value.details == {"field": "file"}
    stored = attach_file(
        db, settings, agent, view.id, filename="notes.txt", content_type=None, data=b"hi", now=T0
    )
    assert stored.content_type == "text/plain"
    outsider = viewer_for(db, people["other"], "agent")
    with pytest.raises(NotFound):
        read_file(db, outsider, view.id, stored.id)
    assert follow_up_files(db, outsider, [view.id]) == {}
