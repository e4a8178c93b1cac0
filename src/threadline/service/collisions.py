"""Collision warnings: who else is writing on a conversation right now.

Each open reply box tells the server every few seconds that its agent is typing (the inbox page's
poll); the registry keeps the last word from each agent per conversation for a short time, and answers
who else is typing. It lives in the server process's memory: with several web processes, two agents
served by different processes do not see each other (a shared store such as the database would fix
that at the cost of a write every few seconds per open conversation). A warning, not a lock: both may
still send.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from threadline.clock import Clock, utcnow

TYPING_TTL = timedelta(seconds=8)  # a little over two polls (every 3 s): a closed tab is gone soon


@dataclass(frozen=True, slots=True)
class Typist:
    user_id: int
    name: str
    since: datetime


class TypingRegistry:
    """Agents typing per conversation id, forgotten `ttl` after their last word."""

    def __init__(self, *, ttl: timedelta = TYPING_TTL, clock: Clock = utcnow) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._typing: dict[int, dict[int, Typist]] = {}

    def typing(self, conversation_id: int, user_id: int, name: str) -> list[Typist]:
        """Note that `user_id` types on the conversation; answers the others typing there."""
        now = self._clock()
        with self._lock:
            here = self._typing.setdefault(conversation_id, {})
            here[user_id] = Typist(user_id, name, now)
            return self._others(conversation_id, user_id, now)

    def others(self, conversation_id: int, user_id: int) -> list[Typist]:
        with self._lock:
            return self._others(conversation_id, user_id, self._clock())

    def stopped(self, conversation_id: int, user_id: int) -> None:
        """The agent sent, or left the conversation."""
        with self._lock:
            self._typing.get(conversation_id, {}).pop(user_id, None)

    def _others(self, conversation_id: int, user_id: int, now: datetime) -> list[Typist]:
        here = self._typing.get(conversation_id, {})
        for uid in [u for u, t in here.items() if now - t.since > self._ttl]:
            del here[uid]
        if not here:
            self._typing.pop(conversation_id, None)
        return sorted((t for u, t in here.items() if u != user_id), key=lambda t: t.name)
