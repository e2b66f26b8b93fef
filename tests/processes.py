"""Support for tests that start other processes (a Celery worker, the ASGI server) against the test database."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
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


@contextmanager
def celery_worker(
    queue: str, log_path: Path, *, concurrency: int = 1, pool: str = "solo", env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A real Celery worker consuming only ``queue`` (a name of this test run only, so a
    worker of a concurrent run on the same broker cannot take its tasks), on the test
    database; ready when entered, stopped (then killed if need be) on exit. It leads its
    own process group: ``os.killpg(worker.pid, SIGKILL)`` kills it with its pool."""
    base_dir = Path(settings.BASE_DIR)
    child_env = {
        **os.environ,
        "DATABASE_URL": database_url_of_the_test_database(),
        "REDIS_URL": settings.REDIS_URL,
        **(env or {}),
    }
    child_env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    child_env.pop("CELERY_BROKER_URL", None)
    argv = [str(base_dir / ".venv" / "bin" / "celery"), "-A", "config", "worker", f"--pool={pool}"]
    argv += [f"--concurrency={concurrency}", "-Q", queue, "-n", f"{queue}@%h"]
    argv += ["--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=INFO"]
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            argv, cwd=base_dir, env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        ready = wait_for(lambda: worker.poll() is not None or b" ready." in log_path.read_bytes(), timeout=60)
        assert ready and worker.poll() is None, log_path.read_text()
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
