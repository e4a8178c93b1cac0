"""Rate limits kept in the server process: token buckets per write key (ingestion) and per client IP
(signing in).

Each process counts on its own: with N server processes a sender may get up to N times the rate. That
is enough to stop a runaway sender or a password-guessing script from crowding out everyone else
(the per-account lockout, accounts/signin.py, is shared by all processes through the database).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

# Past this many buckets, full ones (idle senders) are forgotten: a full bucket and a missing one mean
# the same, so memory stays bounded however many addresses try to sign in.
MAX_BUCKETS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """`rate` tokens a second per key, up to `burst` in hand; `rate` 0 turns the limit off."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, max(burst, 1.0)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()  # sign-in runs in the thread pool; ingestion on the event loop

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str, cost: float = 1.0, *, now: float) -> float:
        """Spend `cost` tokens of `key`'s bucket; returns 0 when allowed, else the seconds to wait.

        A cost above the burst (one batch bigger than the bucket) is charged as a full bucket, so it
        passes once the bucket is full rather than never."""
        if not self.enabled:
            return 0.0
        cost = min(cost, self.burst)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_BUCKETS:
                    self._forget_full(now)
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + max(now - bucket.at, 0.0) * self.rate)
            bucket.at = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self.rate >= self.burst:
                del self._buckets[key]
        if len(self._buckets) >= MAX_BUCKETS:  # all busy: the oldest go
            for key in sorted(self._buckets, key=lambda k: self._buckets[k].at)[: MAX_BUCKETS // 10]:
                del self._buckets[key]


def retry_after(wait: float) -> str:
    """A Retry-After value: whole seconds, at least one."""
    return str(max(math.ceil(wait), 1))


def ingestion_buckets(rate: float, burst: int) -> TokenBuckets:
    """THREADLINE_INGEST_RATE_LIMIT messages a second per write key, THREADLINE_INGEST_RATE_BURST at once."""
    return TokenBuckets(rate, burst)


def sign_in_buckets(per_minute: int) -> TokenBuckets:
    """THREADLINE_LOGIN_RATE_LIMIT attempts a minute per client IP, all of them at once at most."""
    return TokenBuckets(per_minute / 60, per_minute)
