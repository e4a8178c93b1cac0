"""Accounts as people meet them: signing in with lockout, sessions, password change, users and invitations,
personal API tokens; over real HTTP against a live server whose clock the tests move."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.conftest import LiveServer
from tests.factories import make_token
from threadline.accounts import (
    LockoutPolicy,
    change_password,
    change_role,
    create_token,
    create_user,
    get_user,
    list_sessions,
    set_active,
    sign_in,
    start_session,
)
from threadline.cli.main import app as cli
from threadline.config import Settings, get_settings
from threadline.errors import Conflict, Invalid
from threadline.storage import Database
from threadline.storage.models import SignInFailure, User, UserSession

START = datetime(2025, 3, 1, 9, 0)
PASSWORD = "correct horse battery"  # the factories' password
SECRET = "test-secret-key-not-for-production"  # the settings' secret key (conftest.py)
WRONG = "Wrong email or password."


class MovableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def live(settings: Settings, db: Database, clock: MovableClock) -> Iterator[LiveServer]:
    with LiveServer(settings, db, clock) as server:
        yield server


@pytest.fixture
def browser(live: LiveServer) -> Iterator[Callable[[], httpx.Client]]:
    """Opens a fresh browser (its own cookie jar) per call: one person, or one of their devices."""
    opened: list[httpx.Client] = []

    def open_one() -> httpx.Client:
        opened.append(httpx.Client(base_url=live.url, timeout=30))
        return opened[-1]

    yield open_one
    for client in opened:
        client.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form without a CSRF token"
    return match.group(1)


def try_sign_in(client: httpx.Client, email: str, password: str) -> httpx.Response:
    form = client.get("/login")
    return client.post("/login", data={"email": email, "password": password, "csrf": csrf_of(form.text)})


def signed_in(browser: Callable[[], httpx.Client], email: str, password: str = PASSWORD) -> httpx.Client:
    client = browser()
    response = try_sign_in(client, email, password)
    assert response.status_code == 303, response.text
    return client


def post_form(client: httpx.Client, path: str, page: str = "/account", **data: str) -> httpx.Response:
    return client.post(path, data={"csrf": csrf_of(client.get(page).text), **data})


def error_of(html: str) -> str:
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.S)
    return match.group(1).strip() if match else ""


def user_row(db: Database, email: str) -> User:
    with db.read() as session:
        user = session.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


# --- lockout ------------------------------------------------------------------------------------------


def test_five_failures_lock_the_account_until_the_period_passes(
    browser: Callable[[], httpx.Client], db: Database, clock: MovableClock
) -> None:
    make_token(db, "agent@example.com", "agent")
    client = browser()
    for _ in range(4):
        wrong = try_sign_in(client, "agent@example.com", "not the password")
        assert wrong.status_code == 401 and error_of(wrong.text) == WRONG
    locked = try_sign_in(client, "agent@example.com", "not the password")
    assert locked.status_code == 429 and "locked until Mar 1, 2025, 9:15\u202fAM" in locked.text
    assert locked.headers["Retry-After"] == "900"
    clock.advance(minutes=14)
    right_but_locked = try_sign_in(client, "agent@example.com", PASSWORD)
    assert (
        right_but_locked.status_code == 429
        and "locked until Mar 1, 2025, 9:15\u202fAM" in right_but_locked.text
    )
    assert client.get("/account").status_code == 303
    clock.advance(minutes=1, seconds=1)
    assert try_sign_in(client, "agent@example.com", PASSWORD).status_code == 303
    assert client.get("/account").status_code == 200
    row = user_row(db, "agent@example.com")
    assert row.failed_logins == 0 and row.locked_until is None and row.last_login_at == clock.now


def test_success_resets_the_count_and_an_expired_lock_starts_afresh(
    browser: Callable[[], httpx.Client], db: Database, clock: MovableClock
) -> None:
    make_token(db, "agent@example.com", "agent")
    client = browser()
    for _ in range(4):
        try_sign_in(client, "agent@example.com", "nope nope nope")
    assert try_sign_in(client, "agent@example.com", PASSWORD).status_code == 303
    assert user_row(db, "agent@example.com").failed_logins == 0
    for _ in range(4):
        assert try_sign_in(client, "agent@example.com", "nope nope nope").status_code == 401
    assert try_sign_in(client, "agent@example.com", "nope nope nope").status_code == 429
    clock.advance(minutes=16)
    assert try_sign_in(client, "agent@example.com", "nope nope nope").status_code == 401  # 1 of 5 again


def test_an_unknown_email_gets_the_same_answers_as_a_known_one(
    browser: Callable[[], httpx.Client], db: Database
) -> None:
    make_token(db, "agent@example.com", "agent")
    client = browser()
    known = [try_sign_in(client, "agent@example.com", "guess number x") for _ in range(6)]
    unknown = [try_sign_in(client, "nobody@example.com", "guess number x") for _ in range(6)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401] * 4 + [429] * 2
    assert [error_of(r.text) for r in known] == [error_of(r.text) for r in unknown]
    assert [r.headers.get("Retry-After") for r in known] == [r.headers.get("Retry-After") for r in unknown]


def test_lockout_follows_the_settings(db: Database) -> None:
    create_user(db, "a@example.com", "agent", PASSWORD, now=START)
    policy = LockoutPolicy(2, timedelta(minutes=1))
    attempts = [
        sign_in(db, "a@example.com", "wrong password", now=START, policy=policy, secret=SECRET)
        for _ in range(2)
    ]
    assert attempts[0].locked_until is None and attempts[1].locked_until == START + timedelta(minutes=1)
    later = START + timedelta(minutes=1, seconds=1)
    assert sign_in(db, "A@Example.com", PASSWORD, now=later, policy=policy, secret=SECRET).user


def test_an_unknown_email_locks_across_server_processes(
    settings: Settings, db: Database, clock: MovableClock
) -> None:
    """Two servers with their own connections, as two worker processes have: they count together."""
    other_db = Database(settings.database_url)
    try:
        with (
            LiveServer(settings, db, clock) as one,
            LiveServer(settings, other_db, clock) as two,
            httpx.Client(base_url=one.url, timeout=30) as first,
            httpx.Client(base_url=two.url, timeout=30) as second,
        ):
            answers = [
                try_sign_in(client, "Nobody@Example.com", "guess number x")
                for client in (first, second, first, second, first, second)
            ]
    finally:
        other_db.dispose()
    assert [r.status_code for r in answers] == [401] * 4 + [429] * 2
    assert answers[-1].headers["Retry-After"] == "900" and "locked until" in answers[-1].text
    with db.read() as session:
        [row] = session.scalars(select(SignInFailure)).all()
    # The typed address is not stored, nor its plain digest (anyone could hash a list of addresses).
    assert row.failures == 5 and row.key != hashlib.sha256(b"nobody@example.com").hexdigest()


def test_a_strangers_count_ends_with_its_lock_and_old_counts_are_pruned(db: Database) -> None:
    policy = LockoutPolicy(2, timedelta(minutes=15))

    def fail(email: str, at: datetime) -> datetime | None:
        return sign_in(db, email, "wrong password", now=at, policy=policy, secret=SECRET).locked_until

    assert fail("x@example.com", START) is None
    assert fail("x@example.com", START) == START + timedelta(minutes=15)
    assert fail("x@example.com", START + timedelta(minutes=14)) == START + timedelta(minutes=15)
    assert fail("x@example.com", START + timedelta(minutes=16)) is None  # 1 of 2 again
    assert fail("y@example.com", START) is None
    with db.read() as session:
        assert len(session.scalars(select(SignInFailure)).all()) == 2
    a_day_later = START + timedelta(days=1, minutes=20)
    assert fail("z@example.com", a_day_later) is None
    with db.read() as session:
        assert len(session.scalars(select(SignInFailure)).all()) == 1  # only z is remembered
    assert fail("x@example.com", a_day_later) is None  # forgotten: 1 of 2, not a lock


# --- sessions -----------------------------------------------------------------------------------------


def test_session_cookie_is_httponly_and_samesite_lax_and_secure_when_asked(
    browser: Callable[[], httpx.Client], db: Database, settings: Settings, clock: MovableClock
) -> None:
    make_token(db)
    response = try_sign_in(browser(), "admin@example.com", PASSWORD)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    secure = settings.model_copy(update={"secure_cookies": True})
    with LiveServer(secure, db, clock) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        # The login form already sets the cookie (its CSRF token); over plain HTTP the client rightly
        # keeps a Secure cookie to itself, so the header is all there is to see.
        response = c.get("/login")
    assert "; secure" in response.headers["set-cookie"].lower()


def cookie_of(client: httpx.Client) -> str:
    return str(client.cookies["tl_session"])


def with_cookie(browser: Callable[[], httpx.Client], cookie: str) -> httpx.Client:
    """Another browser holding a copy of someone's session cookie."""
    client = browser()
    client.cookies.set("tl_session", cookie)
    return client


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(
    browser: Callable[[], httpx.Client], db: Database
) -> None:
    make_token(db, "agent@example.com", "agent")
    laptop = signed_in(browser, "agent@example.com")
    copy = cookie_of(laptop)
    assert with_cookie(browser, copy).get("/account").status_code == 200
    # The cookie holds the session's secret and the CSRF token, nothing about the user; the database
    # keeps only the secret's digest.
    contents = json.loads(base64.b64decode(copy.split(".")[0]))
    assert set(contents) <= {"sid", "csrf"}
    with db.read() as session:
        stored = session.scalars(select(UserSession.id)).all()
    assert stored == [hashlib.sha256(contents["sid"].encode()).hexdigest()]

    page = laptop.get("/account")
    signed_out = laptop.post("/logout", data={"csrf": csrf_of(page.text)})
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login"
    for client in (laptop, with_cookie(browser, copy)):
        refused = client.get("/account")
        assert refused.status_code == 303 and refused.headers["location"] == "/login?next=/account"


def session_rows(html: str) -> dict[str, bool]:
    """The sessions listed at /account: id -> whether it is the one looking."""
    return {
        session_id: bool(current)
        for session_id, current in re.findall(
            r'<tr data-session="([0-9a-f]{64})"( aria-current="true")?>', html
        )
    }


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Mobile/15E148 Safari/604.1"
)


def test_the_account_page_lists_sessions_and_signs_out_another(
    browser: Callable[[], httpx.Client], db: Database, clock: MovableClock
) -> None:
    make_token(db, "agent@example.com", "agent")
    make_token(db, "other@example.com", "agent")
    laptop = signed_in(browser, "agent@example.com")
    clock.advance(minutes=5)
    phone = browser()
    phone.headers["User-Agent"] = IPHONE
    assert try_sign_in(phone, "agent@example.com", PASSWORD).status_code == 303

    page = laptop.get("/account").text
    listed = session_rows(page)
    assert len(listed) == 2 and sorted(listed.values()) == [False, True]
    for shown in ("Safari on iOS", "python-httpx", "127.0.0.1", "This session", "Mar 1, 2025, 9:05"):
        assert shown in page, shown
    [phone_id] = [session_id for session_id, current in listed.items() if not current]
    assert session_rows(phone.get("/account").text)[phone_id] is True

    other = signed_in(browser, "other@example.com")
    [other_id] = session_rows(other.get("/account").text)
    refused = post_form(laptop, f"/account/sessions/{other_id}/revoke")  # someone else's: as if unknown
    assert refused.status_code == 404 and error_of(refused.text) == "no such session"
    assert other.get("/account").status_code == 200

    done = post_form(laptop, f"/account/sessions/{phone_id}/revoke")
    assert done.status_code == 303 and done.headers["location"] == "/account?done=session"
    after = laptop.get(done.headers["location"])
    assert "The session is signed out" in after.text and list(session_rows(after.text).values()) == [True]
    assert phone.get("/account").status_code == 303
    assert post_form(laptop, f"/account/sessions/{phone_id}/revoke").status_code == 404  # already ended


def test_signing_out_everywhere_else_keeps_only_this_session(
    browser: Callable[[], httpx.Client], db: Database
) -> None:
    make_token(db, "agent@example.com", "agent")
    make_token(db, "other@example.com", "agent")
    laptop, phone, tablet = (signed_in(browser, "agent@example.com") for _ in range(3))
    other = signed_in(browser, "other@example.com")
    assert "Sign out everywhere else" in laptop.get("/account").text
    done = post_form(laptop, "/account/sessions/revoke-others")
    assert done.status_code == 303 and done.headers["location"] == "/account?done=sessions"
    page = laptop.get(done.headers["location"]).text
    assert "Your other sessions are signed out" in page and "Sign out everywhere else" not in page
    assert list(session_rows(page).values()) == [True]
    assert phone.get("/account").status_code == 303 and tablet.get("/account").status_code == 303
    assert other.get("/account").status_code == 200  # another user's sessions are theirs


def test_a_session_records_use_once_a_minute_and_ends_when_idle_for_two_weeks(
    browser: Callable[[], httpx.Client], db: Database, clock: MovableClock
) -> None:
    make_token(db, "agent@example.com", "agent")
    laptop = signed_in(browser, "agent@example.com")

    def last_seen() -> datetime:
        with db.read() as session:
            [seen] = session.scalars(select(UserSession.last_seen_at)).all()
        return seen

    clock.advance(seconds=30)
    assert laptop.get("/account").status_code == 200 and last_seen() == START  # no write per request
    clock.advance(seconds=31)
    assert laptop.get("/account").status_code == 200 and last_seen() == START + timedelta(seconds=61)
    clock.advance(days=13)
    assert laptop.get("/account").status_code == 200
    clock.advance(days=14, minutes=1)
    assert laptop.get("/account").status_code == 303


def test_changing_the_password_signs_out_other_sessions_and_keeps_this_one(
    browser: Callable[[], httpx.Client], db: Database
) -> None:
    make_token(db, "agent@example.com", "agent")
    laptop, phone = signed_in(browser, "agent@example.com"), signed_in(browser, "agent@example.com")
    before = cookie_of(laptop)
    change = "/account/password"
    refusals = {
        "The two new passwords differ.": ("a new password 1", "a new password 2", PASSWORD),
        "new_password: must be at least 10 characters": ("short", "short", PASSWORD),
        "new_password: must differ from the current password": (PASSWORD, PASSWORD, PASSWORD),
        "current_password: is not right": ("a new password 1", "a new password 1", "wrong current pw"),
    }
    for message, (new, again, current) in refusals.items():
        refused = post_form(
            laptop, change, current_password=current, new_password=new, new_password_again=again
        )
        assert refused.status_code == 400 and error_of(refused.text) == message
    assert phone.get("/account").status_code == 200  # nothing changed yet
    done = post_form(
        laptop,
        change,
        current_password=PASSWORD,
        new_password="a much better password",
        new_password_again="a much better password",
    )
    assert done.status_code == 303 and done.headers["location"] == "/account?done=password"
    page = laptop.get(done.headers["location"])
    assert page.status_code == 200 and "Your password is changed" in page.text
    assert phone.get("/account").status_code == 303
    # This browser carries on in a new session: a copy of its cookie from before the change does not.
    assert cookie_of(laptop) != before and with_cookie(browser, before).get("/account").status_code == 303
    assert len(session_rows(page.text)) == 1
    assert try_sign_in(browser(), "agent@example.com", PASSWORD).status_code == 401
    assert try_sign_in(browser(), "agent@example.com", "a much better password").status_code == 303


def test_deactivation_ends_sessions_and_tokens_at_once(
    browser: Callable[[], httpx.Client], db: Database
) -> None:
    make_token(db)
    token = make_token(db, "agent@example.com", "agent")
    admin, agent = signed_in(browser, "admin@example.com"), signed_in(browser, "agent@example.com")
    bearer = {"Authorization": f"Bearer {token}"}
    assert agent.get("/account").status_code == 200
    assert agent.get("/api/v1/tokens", headers=bearer).status_code == 200
    agents_cookie = cookie_of(agent)
    agent_id = user_row(db, "agent@example.com").id
    done = post_form(admin, f"/users/{agent_id}/deactivate", page="/users")
    assert done.status_code == 303 and "deactivated" in admin.get(done.headers["location"]).text
    assert agent.get("/account").status_code == 303
    assert agent.get("/api/v1/tokens", headers=bearer).status_code == 401
    assert try_sign_in(browser(), "agent@example.com", PASSWORD).status_code == 401
    assert post_form(admin, f"/users/{agent_id}/reactivate", page="/users").status_code == 303
    assert try_sign_in(browser(), "agent@example.com", PASSWORD).status_code == 303
    # Revoked, not suspended: neither the old session nor the old token comes back.
    assert with_cookie(browser, agents_cookie).get("/account").status_code == 303
    assert agent.get("/api/v1/tokens", headers=bearer).status_code == 401


# --- users and invitations ----------------------------------------------------------------------------


def test_admin_lists_users_and_changes_a_role(browser: Callable[[], httpx.Client], db: Database) -> None:
    make_token(db)
    create_user(db, "agent@example.com", "agent", PASSWORD, now=START, name="Li Na")
    admin = signed_in(browser, "admin@example.com")
    listing = admin.get("/users")
    assert listing.status_code == 200
    for expected in ("agent@example.com", "Li Na", "admin@example.com", "Never"):
        assert expected in listing.text
    agent_id = user_row(db, "agent@example.com").id
    assert post_form(admin, f"/users/{agent_id}/role", page="/users", role="manager").status_code == 303
    assert user_row(db, "agent@example.com").role == "manager"
    bad = post_form(admin, f"/users/{agent_id}/role", page="/users", role="boss")
    assert bad.status_code == 400 and "role: must be one of" in bad.text


def test_invitation_end_to_end(
    browser: Callable[[], httpx.Client], db: Database, clock: MovableClock
) -> None:
    make_token(db)
    admin = signed_in(browser, "admin@example.com")
    invited = post_form(
        admin, "/users/invite", page="/users", email="New@Example.com", role="agent", name="Wang"
    )
    assert invited.status_code == 201
    link = re.search(r"data-invite-link>http://[^/]+(/invite/[^<]+)<", invited.text)
    assert link, invited.text
    assert "Invited" in admin.get("/users").text
    assert try_sign_in(browser(), "new@example.com", "").status_code == 401  # no password yet

    invitee = browser()
    form = invitee.get(link.group(1))
    assert form.status_code == 200 and "new@example.com" in form.text
    differ = invitee.post(
        link.group(1),
        data={"csrf": csrf_of(form.text), "password": "my own password", "password_again": "my own passw0rd"},
    )
    assert differ.status_code == 400 and error_of(differ.text) == "The two passwords differ."
    accepted = invitee.post(
        link.group(1),
        data={"csrf": csrf_of(form.text), "password": "my own password", "password_again": "my own password"},
    )
    assert accepted.status_code == 303 and invitee.get("/account").status_code == 200
    assert user_row(db, "new@example.com").last_login_at == clock.now

    again = browser()
    reused = again.get(link.group(1))
    assert reused.status_code == 410 and "not valid" in reused.text
    replay = again.post(
        link.group(1), data={"csrf": csrf_of(reused.text), "password": "x" * 12, "password_again": "x" * 12}
    )
    assert replay.status_code == 410
    assert try_sign_in(browser(), "new@example.com", "my own password").status_code == 303


def test_expired_and_replaced_invitations_are_refused(
    browser: Callable[[], httpx.Client], db: Database, clock: MovableClock
) -> None:
    make_token(db)
    admin = signed_in(browser, "admin@example.com")
    first = post_form(admin, "/users/invite", page="/users", email="late@example.com", role="analyst")
    first_link = re.search(r"data-invite-link>http://[^/]+(/invite/[^<]+)<", first.text)
    assert first_link
    clock.advance(minutes=1)
    user_id = user_row(db, "late@example.com").id
    second = post_form(admin, f"/users/{user_id}/invite", page="/users")
    second_link = re.search(r"data-invite-link>http://[^/]+(/invite/[^<]+)<", second.text)
    assert second.status_code == 201 and second_link
    guest = browser()
    assert guest.get(first_link.group(1)).status_code == 410  # replaced by the second
    assert guest.get(second_link.group(1)).status_code == 200
    clock.advance(days=7, minutes=1)
    expired = guest.get(second_link.group(1))
    assert expired.status_code == 410 and "expired" in expired.text
    assert guest.get("/invite/1-2-3").status_code == 410 and guest.get("/invite/junk").status_code == 410


def test_agents_cannot_reach_users(browser: Callable[[], httpx.Client], db: Database) -> None:
    make_token(db)
    make_token(db, "agent@example.com", "agent")
    agent = signed_in(browser, "agent@example.com")
    page = agent.get("/users")
    assert page.status_code == 403 and "admin@example.com" not in page.text
    admin_id = user_row(db, "admin@example.com").id
    assert post_form(agent, "/users/invite", email="sneaky@example.com", role="admin").status_code == 403
    assert post_form(agent, f"/users/{admin_id}/deactivate").status_code == 403
    assert post_form(agent, f"/users/{admin_id}/role", role="agent").status_code == 403
    assert get_user(db, admin_id) is not None and user_row(db, "admin@example.com").role == "admin"
    with db.read() as session:
        assert session.scalar(select(User).where(User.email == "sneaky@example.com")) is None


def test_every_form_refuses_a_missing_csrf_token(browser: Callable[[], httpx.Client], db: Database) -> None:
    make_token(db)
    make_token(db, "agent@example.com", "agent")
    admin = signed_in(browser, "admin@example.com")
    agent_id = user_row(db, "agent@example.com").id
    invited = post_form(admin, "/users/invite", page="/users", email="inv@example.com", role="agent")
    link = re.search(r"data-invite-link>http://[^/]+(/invite/[^<]+)<", invited.text)
    assert link
    forms = {
        "/login": {"email": "admin@example.com", "password": PASSWORD},
        "/account/password": {
            "current_password": PASSWORD,
            "new_password": "another password",
            "new_password_again": "another password",
        },
        "/account/tokens": {"name": "sneaky"},
        "/account/tokens/1/revoke": {},
        "/users/invite": {"email": "x@example.com", "role": "admin"},
        f"/users/{agent_id}/deactivate": {},
        f"/users/{agent_id}/reactivate": {},
        f"/users/{agent_id}/role": {"role": "admin"},
        f"/users/{agent_id}/invite": {},
        f"/users/{agent_id}/team": {"team": ""},
        "/account/sessions/revoke-others": {},
        "/account/sessions/0/revoke": {},
        link.group(1): {"password": "a long password", "password_again": "a long password"},
        "/logout": {},
    }
    for path, data in forms.items():
        assert admin.post(path, data=data).status_code == 403, path
        assert admin.post(path, data={**data, "csrf": "forged"}).status_code == 403, path
    assert admin.get("/account").status_code == 200 and user_row(db, "agent@example.com").is_active


# --- personal API tokens ------------------------------------------------------------------------------


def test_tokens_on_the_account_page(browser: Callable[[], httpx.Client], db: Database) -> None:
    make_token(db, "agent@example.com", "agent")
    agent = signed_in(browser, "agent@example.com")
    made = post_form(agent, "/account/tokens", name="reporting script")
    secret = re.search(r"data-new-token>(tl_[^<]+)<", made.text)
    assert made.status_code == 201 and secret
    page = agent.get("/account")
    assert "<td>reporting script</td>" in page.text and secret.group(1) not in page.text  # shown once
    bearer = {"Authorization": f"Bearer {secret.group(1)}"}
    assert agent.get("/api/v1/tokens", headers=bearer).status_code == 200
    assert re.search(r"reporting script</td>\s*<td>[^<]+</td>\s*<td>(?!<span)", agent.get("/account").text)
    token_id = re.search(r'data-token="(\d+)">\s*<td>reporting script', page.text)
    assert token_id
    assert post_form(agent, f"/account/tokens/{token_id.group(1)}/revoke").status_code == 303
    assert agent.get("/api/v1/tokens", headers=bearer).status_code == 401
    assert "<td>reporting script</td>" not in agent.get("/account").text
    assert post_form(agent, "/account/tokens", name="  ").status_code == 400


def test_tokens_over_the_api_are_the_callers_own(
    browser: Callable[[], httpx.Client], db: Database, clock: MovableClock
) -> None:
    mine, theirs = make_token(db, "me@example.com", "agent"), make_token(db, "them@example.com", "agent")
    api = browser()
    me, them = {"Authorization": f"Bearer {mine}"}, {"Authorization": f"Bearer {theirs}"}
    made = api.post("/api/v1/tokens", json={"name": "ci"}, headers=me)
    assert made.status_code == 201 and made.json()["token"].startswith("tl_")
    assert made.json()["created_at"] == "2025-03-01T09:00:00Z"
    listed = api.get("/api/v1/tokens", headers=me).json()["tokens"]
    assert [t["name"] for t in listed] == ["cli", "ci"] and all("token" not in t for t in listed)
    assert listed[0]["last_used_at"] == "2025-03-01T09:00:00Z" and listed[1]["last_used_at"] is None
    their_ids = [t["id"] for t in api.get("/api/v1/tokens", headers=them).json()["tokens"]]
    refused = api.delete(f"/api/v1/tokens/{their_ids[0]}", headers=me)
    assert refused.status_code == 404 and api.get("/api/v1/tokens", headers=them).status_code == 200
    assert api.delete("/api/v1/tokens/999999", headers=me).status_code == 404
    assert api.delete(f"/api/v1/tokens/{made.json()['id']}", headers=me).status_code == 204
    revoked = api.get("/api/v1/tokens", headers={"Authorization": f"Bearer {made.json()['token']}"})
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "unauthorised"
    assert api.post("/api/v1/tokens", json={"name": ""}, headers=me).status_code == 400
    assert api.get("/api/v1/tokens").status_code == 401


# --- the domain rules behind the pages ----------------------------------------------------------------


def test_passwords_need_ten_characters_everywhere(db: Database) -> None:
    with pytest.raises(Invalid, match="at least 10 characters"):
        create_user(db, "a@example.com", "agent", "nine char", now=START)
    user = create_user(db, "a@example.com", "agent", "ten chars!", now=START)
    with pytest.raises(Invalid, match="at least 10 characters"):
        change_password(db, user.id, "ten chars!", "too short", now=START)
    start_session(db, user.id, now=START, ip=None, user_agent=None)
    assert len(list_sessions(db, user.id, now=START)) == 1
    change_password(db, user.id, "ten chars!", "ten chars?", now=START)
    assert list_sessions(db, user.id, now=START) == []  # the page that changed it starts a new one


def test_the_last_active_admin_stays(db: Database) -> None:
    admin = create_user(db, "admin@example.com", "admin", PASSWORD, now=START)
    with pytest.raises(Conflict, match="yourself"):
        set_active(db, admin.id, False, by=admin.id, now=START)
    with pytest.raises(Conflict, match="last active admin"):
        set_active(db, admin.id, False, by=0, now=START)
    with pytest.raises(Conflict, match="last active admin"):
        change_role(db, admin.id, "agent", by=admin.id)
    other = create_user(db, "second@example.com", "admin", PASSWORD, now=START)
    assert change_role(db, admin.id, "agent", by=other.id).role == "agent"


# --- the command line ---------------------------------------------------------------------------------


def test_cli_lists_and_deactivates_users_and_lists_and_revokes_tokens(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    run = CliRunner()
    try:
        make_token(db)
        token = make_token(db, "agent@example.com", "agent")
        create_token(db, "agent@example.com", now=START, name="nightly export")
        users = run.invoke(cli, ["users", "list"])
        assert users.exit_code == 0 and "agent@example.com" in users.output and "active" in users.output
        listed = run.invoke(cli, ["tokens", "list", "agent@example.com"])
        assert listed.exit_code == 0 and "nightly export" in listed.output and token not in listed.output
        token_id = re.search(r"(\d+)[\s│]+nightly export", listed.output)
        assert token_id
        assert run.invoke(cli, ["tokens", "revoke", token_id.group(1)]).exit_code == 0
        assert "nightly export" not in run.invoke(cli, ["tokens", "list", "agent@example.com"]).output
        missing = run.invoke(cli, ["tokens", "revoke", "999999"])
        assert missing.exit_code == 1 and "no token 999999" in missing.output
        gone = run.invoke(cli, ["users", "deactivate", "agent@example.com"])
        assert gone.exit_code == 0 and user_row(db, "agent@example.com").is_active is False
        assert "deactivated" in run.invoke(cli, ["users", "list"]).output
        last = run.invoke(cli, ["users", "deactivate", "admin@example.com"])
        assert last.exit_code == 1 and "last active admin" in last.output
    finally:
        get_settings.cache_clear()
