"""Configuration cached in process memory, invalidated through a version number in Redis.

The hot paths (session start, decisions) must not query rarely-changing configuration
per request. Each cached namespace keeps its loaded value with the version it was loaded
at; a reader compares that with the version in Redis, which costs one GET, and at most
once per ``check_interval`` seconds. Writers call :func:`bump` after their transaction
commits, so every process reloads on its next read.

**Without Redis** (``core/redis_breaker.py``) the version cannot be read: a reader keeps
serving the process's last known value and reloads it from PostgreSQL at most once per
``CONFIG_FALLBACK_RELOAD_SECONDS``, so a change made while Redis is down still shows up
within that bound. A bump that cannot reach Redis empties this process's copy at once
and is sent when Redis answers again; values loaded while Redis was down are reloaded on
the first version read that succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from core.redis_breaker import REDIS_ERRORS, breaker, on_recovery, redis_call

logger = logging.getLogger(__name__)

T = TypeVar("T")

_VERSION_KEY = "config-version:{}"
# The version of a value loaded while Redis could not be read: never equal to a real one.
UNKNOWN = -1


def current_version(namespace: str) -> int | None:
    """The namespace's version in Redis; None when Redis cannot be read."""
    return redis_call(lambda: int(cache.get(_VERSION_KEY.format(namespace)) or 0), None)


_pending_bumps: set[str] = set()
_pending_lock = threading.Lock()


def _send_bump(namespace: str) -> None:
    key = _VERSION_KEY.format(namespace)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=None)


def bump(namespace: str) -> None:
    """Invalidate ``namespace`` in every process once the current transaction commits."""

    def _bump() -> None:
        # This process sees its own change at once, whether or not Redis does.
        for instance in VersionedCache.instances:
            if instance.namespace == namespace:
                instance.clear()
        if breaker.available():
            try:
                _send_bump(namespace)
            except REDIS_ERRORS as error:
                breaker.failure(error)
            else:
                breaker.success()
                return
        with _pending_lock:
            _pending_bumps.add(namespace)
        logger.warning("config: Redis down, invalidation of %r is sent when it answers again", namespace)

    transaction.on_commit(_bump)


def _send_pending_bumps() -> None:
    with _pending_lock:
        pending = sorted(_pending_bumps)
        _pending_bumps.clear()
    for index, namespace in enumerate(pending):
        try:
            _send_bump(namespace)
        except REDIS_ERRORS:
            with _pending_lock:
                _pending_bumps.update(pending[index:])
            raise


on_recovery(_send_pending_bumps)


def fallback_reload_seconds() -> float:
    return float(getattr(settings, "CONFIG_FALLBACK_RELOAD_SECONDS", 10.0))


class VersionedCache(Generic[T]):
    instances: list[VersionedCache] = []

    def __init__(self, namespace: str, loader: Callable[[], T], *, check_interval: float = 0.5) -> None:
        self.namespace = namespace
        self.loader = loader
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._value: T | None = None
        self._version: int | None = None
        self._checked_at = 0.0
        self._loaded_at = 0.0
        VersionedCache.instances.append(self)

    def get(self, *, check_now: bool = False) -> T:
        """The cached value; ``check_now`` compares versions even within the interval."""
        now = time.monotonic()
        if not check_now and self._version is not None and now - self._checked_at < self.check_interval:
            return self._value  # type: ignore[return-value]
        version = current_version(self.namespace)
        with self._lock:
            if version is None:
                # Redis down: the last known value, reloaded from PostgreSQL at a bounded rate.
                if self._version is None or now - self._loaded_at >= fallback_reload_seconds():
                    self._load(UNKNOWN, now)
            elif self._version != version:
                self._load(version, now)
            self._checked_at = now
            return self._value  # type: ignore[return-value]

    def _load(self, version: int, now: float) -> None:
        self._value = self.loader()
        self._version = version
        self._loaded_at = now

    def clear(self) -> None:
        with self._lock:
            self._version = None
            self._value = None

    @classmethod
    def clear_all(cls) -> None:
        for instance in cls.instances:
            instance.clear()
