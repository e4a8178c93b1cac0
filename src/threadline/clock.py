"""The current time, injectable: tests move a clock instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Naive UTC, the convention of every stored time."""
    return datetime.now(UTC).replace(tzinfo=None)
