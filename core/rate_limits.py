"""Request counters in fixed windows: in Redis, or in process memory while Redis is unreachable.

A hit on several limits costs one Redis round trip: a pipeline of ``INCR`` and
``EXPIRE`` per limit, on keys named after the window (``rl:<bucket>:<window number>``),
so every process counts into the same key and a key expires one window after its own.
A fixed window lets a client send up to twice its limit across a window boundary; in
exchange the count is one integer per bucket and ``Retry-After`` is exact: the seconds
left in the window. A limit may also *flag* its bucket when it goes over: the flag
(``rl-flag:<bucket>``, read in the same round trip) stays for ``flag_seconds``, so the
caller can treat the bucket's traffic apart long after its window turned.

When Redis does not answer (refused, timed out, any Redis error), each process counts
in its own memory instead, so the limits still hold, per process (P processes admit up
to P times a limit), and Redis is tried again after :data:`REDIS_RETRY_SECONDS`. A hit
never raises because Redis is down, and never waits on it longer than its timeouts.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.25
REDIS_RETRY_SECONDS = 2.0
MEMORY_BUCKETS = 100_000  # per process; beyond this, new buckets are not counted until the window turns


@dataclass(frozen=True)
class Limit:
    name: str  # what the limit is on ("site", "address"): the refusal's code names it
    bucket: str  # whose requests it counts
    requests: int  # allowed per window; 0 or less: no limit
    window: int  # seconds
    flag_seconds: int = 0  # once over the limit, the bucket stays flagged this long (0: never flagged)


@dataclass(frozen=True)
class Exceeded:
    limit: Limit
    count: int
    retry_after: int  # whole seconds until the window turns, at least 1

    @property
    def first(self) -> bool:
        """The window's first refused request of the bucket (in all processes, while Redis counts)."""
        return self.count == self.limit.requests + 1


@dataclass(frozen=True)
class Hit:
    exceeded: Exceeded | None  # the first limit the request is over, or None
    flagged: bool  # a bucket of a flagging limit went over its limit within its flag_seconds


class WindowCounter:
    """Counts hits per bucket and window; see the module docstring."""

    def __init__(self) -> None:
        self._clients: dict[str, redis.Redis] = {}
        self._redis_down_until = 0.0
        self._lock = threading.Lock()
        self._memory: dict[str, tuple[int, int]] = {}  # bucket -> (window number, count)
        self._memory_flags: dict[str, float] = {}  # bucket -> flagged until (epoch seconds)

    def hit(self, limits: Sequence[Limit], *, redis_url: str, now: float | None = None) -> Hit:
        """Count one request against every limit."""
        now = time.time() if now is None else now
        active = [limit for limit in limits if limit.requests > 0]
        if not active:
            return Hit(None, False)
        windows = [int(now // limit.window) for limit in active]
        counted = self._redis_hit(active, windows, redis_url)
        in_redis = counted is not None
        counts, flagged = counted if in_redis else self._memory_hit(active, windows, now)
        exceeded = None
        for limit, window, count in zip(active, windows, counts, strict=True):
            if count > limit.requests and exceeded is None:
                exceeded = Exceeded(limit, count, max(1, math.ceil((window + 1) * limit.window - now)))
        if exceeded is not None and exceeded.first and exceeded.limit.flag_seconds:
            self._flag(exceeded.limit, now, redis_url if in_redis else None)
            flagged = True
        return Hit(exceeded, flagged)

    def _redis_hit(
        self, limits: Sequence[Limit], windows: Sequence[int], redis_url: str
    ) -> tuple[list[int], bool] | None:
        if time.monotonic() < self._redis_down_until:
            return None
        try:
            pipe = self._client(redis_url).pipeline(transaction=False)
            for limit, window in zip(limits, windows, strict=True):
                key = f"rl:{limit.bucket}:{window}"
                pipe.incr(key)
                pipe.expire(key, 2 * limit.window)
            flagging = [limit for limit in limits if limit.flag_seconds]
            for limit in flagging:
                pipe.exists(f"rl-flag:{limit.bucket}")
            replies = pipe.execute()
        except (redis.RedisError, OSError) as error:
            self._redis_failed(error)
            return None
        if self._redis_down_until:
            self._redis_down_until = 0.0
            logger.warning("Rate limits count in Redis again")
        counts = [int(count) for count in replies[: 2 * len(limits) : 2]]
        return counts, any(replies[2 * len(limits) :])

    def _redis_failed(self, error: Exception) -> None:
        with self._lock:
            was_up = self._redis_down_until == 0.0
            self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        if was_up:
            logger.warning("Rate limits count in process memory: Redis is unreachable (%s)", error)

    def _flag(self, limit: Limit, now: float, redis_url: str | None) -> None:
        if redis_url is not None:
            try:
                self._client(redis_url).set(f"rl-flag:{limit.bucket}", 1, ex=limit.flag_seconds)
                return
            except (redis.RedisError, OSError) as error:
                self._redis_failed(error)
        with self._lock:
            self._memory_flags[limit.bucket] = now + limit.flag_seconds

    def _client(self, url: str) -> redis.Redis:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = redis.Redis.from_url(
                url,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 0),  # no retries: a down Redis costs one attempt, then memory
            )
        return client

    def _memory_hit(self, limits: Sequence[Limit], windows: Sequence[int], now: float) -> tuple[list[int], bool]:
        counts = []
        with self._lock:
            if len(self._memory) > MEMORY_BUCKETS:
                current = max(windows)
                self._memory = {b: wc for b, wc in self._memory.items() if wc[0] >= current}
                self._memory_flags = {b: until for b, until in self._memory_flags.items() if until > now}
            for limit, window in zip(limits, windows, strict=True):
                stored_window, count = self._memory.get(limit.bucket, (window, 0))
                count = count + 1 if stored_window == window else 1
                if len(self._memory) <= MEMORY_BUCKETS or limit.bucket in self._memory:
                    self._memory[limit.bucket] = (window, count)
                counts.append(count)
            flagged = any(self._memory_flags.get(limit.bucket, 0.0) > now for limit in limits if limit.flag_seconds)
        return counts, flagged

    def forget(self) -> None:
        """Drop the in-memory counts and flags, and retry Redis at once (tests)."""
        with self._lock:
            self._memory.clear()
            self._memory_flags.clear()
            self._redis_down_until = 0.0


counter = WindowCounter()
