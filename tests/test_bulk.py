"""Rows written by the bulk path read back exactly as if SQLAlchemy had written them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from tests.factories import make_source
from threadline.storage import Database, insert_rows
from threadline.storage.models import Event, Profile


def test_bulk_rows_round_trip_through_sqlalchemy(db: Database) -> None:
    source = make_source(db)
    whole_second = datetime(2026, 1, 2, 3, 4, 5)
    fraction = datetime(2026, 1, 2, 3, 4, 5, 123456)
    profile = {
        "id": "p1",
        "created_at": whole_second,
        "first_seen": whole_second,
        "last_seen": fraction,
        "event_count": 2,
        "display_name": "张伟",
        "search_name": "张伟",
        "traits": {"a": [1, {"b": None}]},
        "trait_meta": {},
        "channels": {"web": {"events": 2}},
        "merged_into": None,
        "merged_at": None,
    }
    event = {
        "profile_id": "p1",
        "original_profile_id": "p1",
        "source_id": source.id,
        "channel": "web",
        "type": "track",
        "name": "Tab\tand 'quotes' \\ back",
        "message_id": "m1",
        "user_id": None,
        "anonymous_id": "a",
        "sent_at": None,
        "received_at": fraction,
        "properties": {"price": 1.5},
        "traits": None,
        "context": {"emoji": "✓"},
    }
    with db.write() as session:
        connection = session.connection()
        insert_rows(connection, Profile, [profile])
        insert_rows(
            connection,
            Event,
            [{**event, "timestamp": whole_second}, {**event, "message_id": "m2", "timestamp": fraction}],
        )
    with db.read() as session:
        stored = session.get(Profile, "p1")
        assert stored is not None
        assert (stored.created_at, stored.last_seen, stored.display_name) == (whole_second, fraction, "张伟")
        assert stored.traits == {"a": [1, {"b": None}]} and stored.merged_into is None
        rows = session.scalars(select(Event).order_by(Event.timestamp)).all()
        assert [r.timestamp for r in rows] == [whole_second, fraction]
        assert rows[0].name == "Tab\tand 'quotes' \\ back" and rows[0].traits is None
        assert rows[1].context == {"emoji": "✓"} and rows[1].properties == {"price": 1.5}
        # Bound parameters compare equal to stored values (keyset paging depends on it).
        assert session.scalar(select(Event.message_id).where(Event.timestamp == whole_second)) == "m1"
        assert session.scalar(select(Event.message_id).where(Event.timestamp < fraction)) == "m1"
