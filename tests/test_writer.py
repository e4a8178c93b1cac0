"""Group commit: concurrent submissions share transactions, each gets its own answer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.factories import make_source
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.ingest import IngestWriter, prepare
from threadline.storage import Database
from threadline.storage.models import Event


def test_concurrent_submissions_are_all_stored_with_their_own_results(
    db: Database, settings: Settings
) -> None:
    web, app = make_source(db, "web", "web"), make_source(db, "app", "app")
    writer = IngestWriter(db, settings)

    def submit(n: int) -> tuple[int, int, int]:
        source = web if n % 2 else app
        messages = [
            {"type": "track", "event": "E", "userId": f"u{n % 5}", "messageId": f"m{n}-{i}"}
            for i in range(30)
        ]
        messages.append({"type": "track", "userId": "u", "event": ""})  # one invalid per request
        messages.append(messages[0])  # and one repeat
        result = writer.submit(prepare(source, messages, settings=settings, received_at=utcnow())).result()
        return result.accepted, result.duplicates, len(result.rejected)

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(submit, range(24)))
    finally:
        writer.close()
    assert answers == [(30, 1, 1)] * 24
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 24 * 30


def test_a_failing_submission_does_not_fail_its_group(db: Database, settings: Settings) -> None:
    web = make_source(db)
    ghost = replace(web, id=web.id + 1000)  # a source deleted after validation: the insert fails
    writer = IngestWriter(db, settings)
    now = utcnow()
    good = [
        prepare(web, [{"type": "identify", "userId": f"g{i}"}], settings=settings, received_at=now)
        for i in range(5)
    ]
    bad = prepare(ghost, [{"type": "identify", "userId": "x"}], settings=settings, received_at=now)
    try:
        futures = [writer.submit(s) for s in (*good[:2], bad, *good[2:])]
        outcomes = [f.exception(timeout=30) for f in futures]
    finally:
        writer.close()
    assert isinstance(outcomes[2], IntegrityError)
    assert [o for i, o in enumerate(outcomes) if i != 2] == [None] * 5
    assert sum(f.result().accepted for i, f in enumerate(futures) if i != 2) == 5


def test_closing_the_writer_finishes_queued_work(db: Database, settings: Settings) -> None:
    web = make_source(db)
    writer = IngestWriter(db, settings)
    futures = [
        writer.submit(
            prepare(web, [{"type": "page", "anonymousId": f"a{i}"}], settings=settings, received_at=utcnow())
        )
        for i in range(50)
    ]
    writer.close()
    assert all(f.done() and f.result().accepted == 1 for f in futures)
