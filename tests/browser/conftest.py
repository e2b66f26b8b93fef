"""Browser tests: the real ASGI app in a uvicorn subprocess, on the test database, driven by headless Chromium.

Fixtures for every browser test (dashboards, the live monitor):

- ``asgi_server`` (session): ``uvicorn config.asgi:application`` on a free port, with the
  settings of production except ``DATABASE_URL`` (the database this test run created),
  ``DB_CONN_MAX_AGE=0`` (no idle connection outlives a request, so the per-test flush
  never waits on the server) and eager Celery tasks (as in this process). HTTP and
  websockets both go through it. Its log is ``test-artifacts/asgi-server.log``.
- ``browser`` (function): Chromium from ``CHROMIUM_PATH`` (default ``/usr/bin/chromium``).
  Playwright's own browser download does not work here, so it is launched by path; a
  missing Chromium is an error, never a skip.
- ``staff_page`` (function): a page logged in as a staff user through the admin login form.
- ``screenshot``: ``screenshot(page, name)`` saves ``test-artifacts/screenshots/<name>.png``.

Tests that use them must commit their data so the server process sees it:
``@pytest.mark.django_db(transaction=True, serialized_rollback=True)`` (serialized
rollback restores the rows the data migrations made, which a flush deletes).

The server keeps configuration in process memory, invalidated through version numbers
in Redis (``core.config_cache``). Every test starts with a cleared Redis, so the
versions restart at 0 and could equal the ones the server loaded during an earlier test;
``_fresh_config_versions`` gives each test versions the server has never seen.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.cache import cache
from django.db import connections
from playwright.sync_api import Browser, Page, sync_playwright

from core.config_cache import VersionedCache
from tests.browser.shop import people, sdk_src, shop, shop_server, shop_site  # noqa: F401
from tests.processes import database_url_of_the_test_database, wait_for

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
STAFF_USERNAME = "browser-staff"
STAFF_PASSWORD = "browser-staff-pw-123"  # noqa: S105


@dataclass
class AsgiServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own local server)
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def asgi_server(django_db_setup) -> Iterator[AsgiServer]:
    """The real ASGI app (HTTP and websockets) served by uvicorn against the test database."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_the_test_database(),
        "REDIS_URL": settings.REDIS_URL,
        "DB_CONN_MAX_AGE": "0",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "asgi-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--lifespan",
                "off",
                "--log-level",
                "warning",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = AsgiServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        up = wait_for(lambda: process.poll() is not None or _answers(f"{server.url}/healthz"), timeout=60)
        assert up and process.poll() is None, f"the ASGI server did not start:\n{server.log()}"
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def browser(transactional_db, django_db_serialized_rollback) -> Iterator[Browser]:
    """Headless Chromium for one test, started after the test's database setup and stopped before its flush.

    Playwright's sync API keeps an asyncio event loop running in this thread while it is
    started. Django then refuses ORM calls here (SynchronousOnlyOperation), although
    they never run inside that loop: it only drives the browser connection, between our
    calls. So DJANGO_ALLOW_ASYNC_UNSAFE is set exactly while Playwright runs, and only
    in browser tests. A running loop also makes Django's connection handler
    context-local instead of thread-local: the test body gets a connection of its own
    (its writes commit, so the server sees them), which is closed here before the loop
    stops; the test database's setup (serialized rollback) and flush run outside
    Playwright, on the thread's usual connection. Hence one browser per test, not per module.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"), args=CHROMIUM_ARGS
            )
            try:
                yield chromium
            finally:
                chromium.close()
                connections.close_all()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def _fresh_config_versions(_fresh_cache_and_eager_tasks) -> None:
    stamp = time.time_ns()
    for instance in VersionedCache.instances:
        cache.set(f"config-version:{instance.namespace}", stamp, timeout=None)


@pytest.fixture(scope="session")
def _staff_password_hash() -> str:
    """The staff password hashed with the server's default hasher (tests here hash with MD5, which it refuses)."""
    hasher = PBKDF2PasswordHasher()
    return hasher.encode(STAFF_PASSWORD, hasher.salt())


@pytest.fixture
def browser_staff_user(transactional_db, django_db_serialized_rollback, django_user_model, _staff_password_hash):
    user = django_user_model.objects.create(username=STAFF_USERNAME, is_staff=True, password=_staff_password_hash)
    return user


@pytest.fixture
def new_page(browser, asgi_server) -> Iterator[Callable[[], Page]]:
    """``new_page()``: a page in a fresh browser context (own cookies), closed after the test."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(
            base_url=asgi_server.url, accept_downloads=True, viewport={"width": 1400, "height": 1000}
        )
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def login(page: Page, *, username: str, password: str, next_url: str = "/admin/") -> None:
    """Log in through the admin login form."""
    page.goto(f"/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{next_url}")


@pytest.fixture
def staff_page(new_page, browser_staff_user) -> Page:
    """A page logged in as a staff user through the admin login form, on the admin index."""
    page = new_page()
    login(page, username=STAFF_USERNAME, password=STAFF_PASSWORD)
    return page


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    def save(page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
