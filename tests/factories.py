"""Factories for tests: sources, users and tokens, messages sent through the real write path."""

from __future__ import annotations

from typing import Any

from threadline import profiles
from threadline.accounts import Viewer, create_token, create_user
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.ingest import IngestResult, SourceInfo, create_source, ingest
from threadline.storage import Database


def make_source(db: Database, name: str = "website", channel: str = "web") -> SourceInfo:
    return create_source(db, name, channel, now=utcnow())


def make_token(db: Database, email: str = "admin@example.com", role: str = "admin") -> str:
    create_user(db, email, role, "correct horse battery", now=utcnow())
    return create_token(db, email, now=utcnow())


def send(db: Database, settings: Settings, source: SourceInfo, *messages: dict[str, Any]) -> IngestResult:
    return ingest(db, source, list(messages), settings=settings, received_at=utcnow())


# Reads as the system (all customers): the data-scope rules are tested on their own in test_scopes.py.
SYSTEM = Viewer.system()


def lookup_profile(db: Database, kind: str, value: str, *, region: str = "US") -> str:
    return profiles.lookup_profile(db, kind, value, region=region, viewer=SYSTEM)


def profile_view(db: Database, profile_id: str) -> dict[str, Any]:
    return profiles.profile_view(db, profile_id, viewer=SYSTEM)


def timeline_page(db: Database, profile_id: str, **options: Any) -> dict[str, Any]:
    return profiles.timeline_page(db, profile_id, viewer=SYSTEM, **options)


def trait_history(db: Database, profile_id: str, key: str | None = None) -> list[dict[str, Any]]:
    return profiles.trait_history(db, profile_id, key, viewer=SYSTEM)
