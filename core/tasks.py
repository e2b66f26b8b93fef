"""The contract every Celery task of this project follows.

Every task is periodic (beat sends it) and safe to run twice. On top of Celery's
options (:func:`periodic_task`), each run holds a **single-instance lock**: a
PostgreSQL session-level advisory lock keyed by the task's name and arguments, taken
with ``pg_try_advisory_lock`` on the worker's own database connection. A second copy
that finds the lock taken (beat sent again while a long run is still going, or a
redelivered message) returns ``None`` at once, logged at debug and counted in
:class:`core.models.PeriodicTaskState`, instead of occupying a worker slot.

Why PostgreSQL and not Redis: every task works on PostgreSQL and cannot run without
it, while Redis may be down (the app degrades then); and the lock belongs to the
database session, so it is released the moment its worker process dies (``kill -9``
included: the server drops the session with the connection), with no expiry to guess.
A session-level lock needs the session: run the workers on a direct connection or a
session-pooling PgBouncer, not a transaction-pooling one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta

from celery import current_task, shared_task
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# Namespace of these advisory locks (two-key form: namespace, hash of the task key).
LOCK_NAMESPACE = 0x5054  # "PT"

STATE_TABLE = "core_periodictaskstate"


def task_key(name: str, args: tuple = (), kwargs: dict | None = None) -> str:
    """The name of a run's lock and state row: the task name, then its arguments if any."""
    if not args and not kwargs:
        return name
    return f"{name} {json.dumps([list(args), kwargs or {}], sort_keys=True, default=str)}"[:255]


def lock_id(key: str) -> int:
    """A stable signed 32-bit hash of ``key`` (the second key of the advisory lock)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big", signed=True)


@contextmanager
def single_instance(key: str):
    """Hold the advisory lock of ``key`` on this thread's connection; yields whether it was free.

    The lock is held across the transactions the body commits (session level), and
    released at the end; if the connection broke meanwhile, the server released it with
    the session.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, lock_id(key)])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, lock_id(key)])
            except DatabaseError:
                # The session is unusable; closing it is what releases the lock.
                logger.warning("Could not release the lock of %s; closing the connection", key, exc_info=True)
                connection.close()


def _sent_at(request, expires: int) -> datetime | None:
    """When the message was sent: Celery stamps ``expires`` seconds after sending as its expiry."""
    stamped = getattr(request, "expires", None)
    if not stamped or getattr(request, "is_eager", False):
        return None
    when = stamped if isinstance(stamped, datetime) else datetime.fromisoformat(stamped)
    return when - timedelta(seconds=expires)


def _state_record(key: str, **columns) -> None:
    """Add one run (or one skipped copy) to the task's state row; never masks the run's outcome."""
    counters = {name: columns.pop(name) for name in ("runs", "failures", "skipped") if name in columns}
    names = [*counters, *columns]
    values = [*counters.values(), *columns.values()]
    updates = [f"{name} = {STATE_TABLE}.{name} + EXCLUDED.{name}" for name in counters]
    updates += [f"{name} = EXCLUDED.{name}" for name in columns]
    sql = (
        f"INSERT INTO {STATE_TABLE} (key, {', '.join(names)}) VALUES (%s{', %s' * len(values)}) "
        f"ON CONFLICT (key) DO UPDATE SET {', '.join(updates)}"
    )
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [key, *values])
    except DatabaseError:
        logger.warning("Could not record the run of %s", key, exc_info=True)


def _run_once(function: Callable, name: str, expires: int, args: tuple, kwargs: dict):
    key = task_key(name, args, kwargs)
    request = current_task.request if current_task else None
    with single_instance(key) as acquired:
        if not acquired:
            logger.debug("%s is running already; this copy returns at once", key)
            _state_record(key, skipped=1, runs=0, failures=0, last_skipped_at=timezone.now())
            return None
        started_at = timezone.now()
        sent_at = _sent_at(request, expires) if request is not None else None
        lateness = max(0.0, (started_at - sent_at).total_seconds()) if sent_at else None
        clock = time.perf_counter()
        failed = True
        try:
            result = function(*args, **kwargs)
            failed = False
            return result
        finally:
            _state_record(
                key,
                runs=1,
                failures=int(failed),
                skipped=0,
                last_started_at=started_at,
                last_finished_at=timezone.now(),
                last_duration_seconds=time.perf_counter() - clock,
                last_lateness_seconds=lateness,
            )


def periodic_task(
    *, expires: int, max_retries: int = 5, time_limit: int | None = None, soft_time_limit: int | None = None
):
    """A task that is safe to run twice: one run at a time per task and arguments (a
    copy finding another run holds the lock returns None at once), acknowledged after it
    ran, requeued when its pool process dies, retried with backoff on database errors,
    and dropped when it waited longer than ``expires`` seconds (the next beat sends a
    fresh one). ``time_limit``/``soft_time_limit`` default to the global
    ``CELERY_TASK_TIME_LIMIT``/``CELERY_TASK_SOFT_TIME_LIMIT`` and may only be lower
    (the broker's visibility timeout is derived from the global one)."""

    def decorate(function: Callable):
        name = f"{function.__module__}.{function.__name__}"

        @functools.wraps(function)
        def run(*args, **kwargs):
            return _run_once(function, name, expires, args, kwargs)

        options = {"time_limit": time_limit, "soft_time_limit": soft_time_limit}
        return shared_task(
            name=name,
            acks_late=True,
            reject_on_worker_lost=True,
            autoretry_for=(OperationalError,),
            retry_backoff=True,
            max_retries=max_retries,
            expires=expires,
            **{option: value for option, value in options.items() if value is not None},
        )(run)

    return decorate
