"""Configuration cached in process memory, invalidated through a version number in Redis.

The hot paths (session start, decisions) must not query rarely-changing configuration
per request. Each cached namespace keeps its loaded value with the version it was loaded
at; a reader compares that with the version in Redis, which costs one GET, and at most
once per ``check_interval`` seconds. Writers call :func:`bump` after their transaction
commits, so every process reloads on its next read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.core.cache import cache
from django.db import transaction

T = TypeVar("T")

_VERSION_KEY = "config-version:{}"


def current_version(namespace: str) -> int:
    return int(cache.get(_VERSION_KEY.format(namespace)) or 0)


def bump(namespace: str) -> None:
    """Invalidate ``namespace`` in every process once the current transaction commits."""

    def _bump() -> None:
        key = _VERSION_KEY.format(namespace)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=None)

    transaction.on_commit(_bump)


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
        VersionedCache.instances.append(self)

    def get(self, *, check_now: bool = False) -> T:
        """The cached value; ``check_now`` compares versions even within the interval."""
        now = time.monotonic()
        if not check_now and self._version is not None and now - self._checked_at < self.check_interval:
            return self._value  # type: ignore[return-value]
        version = current_version(self.namespace)
        with self._lock:
            if self._version != version:
                self._value = self.loader()
                self._version = version
            self._checked_at = now
            return self._value  # type: ignore[return-value]

    def clear(self) -> None:
        with self._lock:
            self._version = None
            self._value = None

    @classmethod
    def clear_all(cls) -> None:
        for instance in cls.instances:
            instance.clear()
