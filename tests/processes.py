"""Support for tests that start other processes (a Celery worker, the ASGI server) against the test database."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

from django.db import connection


def database_url_of_the_test_database() -> str:
    """A ``DATABASE_URL`` naming the database this test run created, for a child process's settings."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    url = f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"
    # The embedded server listens on a unix socket named in OPTIONS (``?host=/path``).
    socket_dir = db.get("OPTIONS", {}).get("host")
    return f"{url}?host={quote(socket_dir, safe='/')}" if socket_dir else url


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds passed; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
