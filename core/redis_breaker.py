"""Redis is a cache and a messenger here, never the record: the request paths degrade without it.

Everything a request reads from Redis (the configuration's version numbers, the scarcity
evidence) goes through :func:`redis_call`, which answers a default instead of raising
when Redis cannot be reached. A failure opens the process's breaker for
``REDIS_RETRY_SECONDS``: meanwhile no request tries Redis at all, so a dead Redis costs
one short socket timeout per process and interval (``REDIS_SOCKET_TIMEOUT``), not one
per request. The first call after the interval tries again; when it succeeds, the
breaker closes and the callbacks registered with :func:`on_recovery` run (the
configuration cache sends the invalidations it could not send while Redis was down).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What an unreachable, restarting or overloaded Redis raises (redis-py wraps socket
# errors in ConnectionError/TimeoutError; an OSError can still escape from the socket).
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)


class RedisBreaker:
    """Open (Redis skipped) for ``open_seconds`` after a failure; closed again by a success."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._down_since: float | None = None
        self._recovery: list[Callable[[], None]] = []

    @property
    def open_seconds(self) -> float:
        return float(getattr(settings, "REDIS_RETRY_SECONDS", 5.0))

    def available(self) -> bool:
        """Whether a call may try Redis now (closed, or its open interval has passed)."""
        return time.monotonic() >= self._open_until

    @property
    def down(self) -> bool:
        """Whether the last attempt failed (Redis is considered down until one succeeds)."""
        return self._down_since is not None

    def failure(self, error: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self._open_until = now + self.open_seconds
            first = self._down_since is None
            if first:
                self._down_since = now
        if first:
            logger.warning(
                "Redis unreachable (%s: %s): serving from process memory and PostgreSQL, retrying every %.0f s",
                error.__class__.__name__,
                error,
                self.open_seconds,
            )

    def success(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            down_since, self._down_since = self._down_since, None
            self._open_until = 0.0
        if down_since is None:
            return
        logger.warning("Redis reachable again after %.1f s", time.monotonic() - down_since)
        for callback in list(self._recovery):
            try:
                callback()
            except REDIS_ERRORS as error:
                self.failure(error)
                return

    def on_recovery(self, callback: Callable[[], None]) -> None:
        self._recovery.append(callback)

    def reset(self) -> None:
        """Closed, as at start (tests)."""
        with self._lock:
            self._open_until = 0.0
            self._down_since = None


breaker = RedisBreaker()


def redis_call(call: Callable[[], T], default: T) -> T:
    """``call()``, or ``default`` when Redis fails or the breaker is open; never raises a Redis error."""
    if not breaker.available():
        return default
    try:
        result = call()
    except REDIS_ERRORS as error:
        breaker.failure(error)
        return default
    breaker.success()
    return result


def on_recovery(callback: Callable[[], None]) -> None:
    """Run ``callback`` (which may call Redis) in the first call that reaches Redis after it was down."""
    breaker.on_recovery(callback)
