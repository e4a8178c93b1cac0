"""Factories for tests: sources, users and tokens, messages sent through the real write path."""

from __future__ import annotations

from typing import Any

from threadline.accounts import create_token, create_user
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
