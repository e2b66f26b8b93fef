"""``manage.py launch``: everything ``make run`` needs, in one process tree.

Migrates, collects static files, makes sure an ``admin`` superuser and the demo site
with its content exist (:mod:`devtools.demo_content`: slots, approved variants, a
running experiment and a bandit, offers, approved urgency rules, and - the first time -
30 days of rolled-up history, so every dashboard shows something), gives the demo site
a new secret key, prints how to log in, then runs the web server, two Celery workers
(one per queue: hot and batch), Celery beat and the demo shop
(:mod:`devtools.demo_shop`, on a second origin, talking to the engine only through the
browser SDK; its backend feeds the stock with the secret key) as child processes until
Ctrl-C or SIGTERM.

The children find PostgreSQL and Redis through ``DATABASE_URL`` and ``REDIS_URL`` in
their environment, and the keys through ``SECRET_KEY`` and ``HASH_KEY``. Without the
URLs, ``manage.py`` has started the embedded servers and exported their URLs and this
checkout's keys before this command ran (``config/development.py``), so the children
share them; this process exits last, after its children, and the embedded servers stop
with it. The web server speaks plain HTTP, so the children also get the plain-HTTP
settings (no redirect to HTTPS, cookies over HTTP: ``config.development.PLAIN_HTTP``)
unless the environment sets them.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections, transaction
from rest_framework.authtoken.models import Token

from config.development import plain_http_environment
from devtools.demo_content import (
    MARKETER_USERNAME,
    DemoContent,
    deals_of,
    demo_content_build,
    demo_site_ensure,
)
from journeys.models import Site
from journeys.services.sites import site_secret_rotate

ADMIN_USERNAME = "admin"
SHOP_SECRET_ENV = "DEMO_SHOP_SECRET_KEY"
HEALTH_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15


class Shutdown(Exception):
    """SIGTERM or SIGHUP arrived: stop like on Ctrl-C."""


def _raise_shutdown(signum, frame):
    raise Shutdown(signal.Signals(signum).name)


class Child:
    """A child process whose output is copied to ours, each line prefixed with its name."""

    def __init__(self, name: str, argv: list[str], *, cwd: Path, out, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        # Its own session: Ctrl-C reaches only the launcher, which stops the children
        # in order instead of all of them racing each other.
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            bufsize=1,
            text=True,
            errors="replace",
        )
        self._out = out
        self._reader = threading.Thread(target=self._forward, name=f"{name}-output", daemon=True)
        self._reader.start()

    def _forward(self) -> None:
        for line in self.process.stdout:
            self._out(f"[{self.name}] {line.rstrip()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._out(f"[{self.name}] did not stop within {timeout:.0f} s; killing it")
            self.process.kill()
            return self.process.wait()
        finally:
            self._reader.join(timeout=2)


def _status(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"


class Command(BaseCommand):
    help = "Migrate, set up the demo site, its content and the logins, run web, worker, beat and the demo shop."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--shop-port", type=int, help="the demo shop's port (default: --port + 1)")
        parser.add_argument("--access-log", action="store_true", help="log every HTTP request of the web server")

    def handle(self, *args, host, port, shop_port, access_log, **options):
        self._lock = threading.Lock()
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health probe otherwise
        shop_port = shop_port or port + 1
        local = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
        base_url = f"http://{local}:{port}"
        shop_url = f"http://{local}:{shop_port}"
        self.check_port_free(local, port)
        self.check_port_free(local, shop_port)
        call_command("migrate", interactive=False, verbosity=1)
        call_command("collectstatic", interactive=False, verbosity=0)
        password, password_note = self.login(ADMIN_USERNAME, superuser=True)
        admin = get_user_model().objects.get(username=ADMIN_USERNAME)
        site = demo_site_ensure(
            origins=sorted({shop_url, f"http://127.0.0.1:{shop_port}", f"http://localhost:{shop_port}"})
        )
        self.say(f"Demo content for {site.name} ({site.domain}) ...")
        content = demo_content_build(site=site, approver=admin, shop_url=shop_url, log=self.say)
        self.report(content)
        marketer_password, marketer_note = self.login(MARKETER_USERNAME, superuser=False)
        # Shown once, here: only its hash is stored. The shop's stock feed gets it by environment.
        secret_key = site_secret_rotate(site=site)
        deals = deals_of(site)
        token = Token.objects.get_or_create(user=admin)[0].key
        site.refresh_from_db()
        connections.close_all()

        banner = self.banner(
            base_url=base_url,
            shop_url=shop_url,
            site=site,
            logins=[
                (ADMIN_USERNAME, password, password_note, "superuser; approves, exports and erases visitors"),
                (MARKETER_USERNAME, marketer_password, marketer_note, "Marketers; edits and submits"),
            ],
            token=token,
            secret_key=secret_key,
        )
        self.say(banner)

        # Ctrl-C even when started with SIGINT ignored (a background job of a script).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_shutdown)
        signal.signal(signal.SIGHUP, _raise_shutdown)
        children: list[Child] = []
        failure: str | None = None
        try:
            self.start_children(children, host, port, access_log)
            self.wait_healthy(base_url, children)
            shop = [
                sys.executable,
                "-m",
                "devtools.demo_shop",
                "--engine",
                base_url,
                "--site-key",
                site.public_key,
                "--host",
                host,
                "--port",
                str(shop_port),
                *[
                    arg
                    for sku, (percent, ends_at) in deals.items()
                    for arg in ("--deal", f"{sku}:{percent}:{ends_at.isoformat()}")
                ],
            ]
            self.start_child(children, "shop", shop, env={SHOP_SECRET_ENV: secret_key})
            self.wait_healthy(shop_url, children, what="The demo shop")
            self.say(banner + "\nRunning. Press Ctrl-C to stop.")
            self.watch(children)
        except KeyboardInterrupt:
            self.say("\nStopping (Ctrl-C).")
        except Shutdown as reason:
            self.say(f"\nStopping ({reason}).")
        except CommandError as error:
            failure = str(error)
        finally:
            # A second Ctrl-C must not leave children behind; stop() kills stragglers itself.
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            self.stop(children)
        if failure:
            raise CommandError(failure)
        self.say("Stopped.")

    # Setup -------------------------------------------------------------------------

    def report(self, content: DemoContent) -> None:
        if content.created:
            self.say(f"   created {len(content.created)} objects: {', '.join(content.created)}")
        else:
            self.say("   nothing to create: the demo content exists (edits made in the admin are kept)")
        if content.history is None:
            self.say("   the demo site has sessions already: no history generated")
        for note in content.notes:
            self.say(f"   {note}")
        self.say(f"Demo content ready in {content.seconds:.1f} s.")

    @transaction.atomic
    def login(self, username: str, *, superuser: bool) -> tuple[str | None, str]:
        """A staff login and its password, kept in ``.data/<username>-password``.

        The password is generated once and reused. If the file is gone, a new one is
        set. If someone changed the password since, it is left alone and not shown.
        The superuser is created when missing; other users must exist already.
        """
        password_file = Path(settings.DATA_DIR) / f"{username}-password"
        stored = password_file.read_text().strip() if password_file.exists() else ""
        User = get_user_model()
        user = User.objects.select_for_update().filter(username=username).first()
        if user is not None and stored and not user.check_password(stored):
            return None, f"(changed since it was generated; {password_file} holds the old one)"
        password = stored or secrets.token_urlsafe(12)
        if user is None and not superuser:
            raise CommandError(f"There is no user {username}.")
        if user is None:
            User.objects.create_superuser(username, email="", password=password)
        elif not stored:
            user.set_password(password)
            user.save(update_fields=["password"])
        if superuser and not (user is None or (user.is_staff and user.is_superuser and user.is_active)):
            user.is_staff = user.is_superuser = user.is_active = True
            user.save(update_fields=["is_staff", "is_superuser", "is_active"])
        if not stored:
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.touch(mode=0o600)
            password_file.write_text(password + "\n")
        return password, f"(kept in {password_file})"

    def banner(
        self, *, base_url: str, shop_url: str, site: Site, logins: list[tuple], token: str, secret_key: str
    ) -> str:
        lines = [
            "",
            "=" * 72,
            f"  Demo shop:  {shop_url}/",
            f"  Admin:      {base_url}/admin/",
            f"  Dashboards: {base_url}/dashboards/",
        ]
        for username, password, note, role in logins:
            lines.append(f"  Login:      {username} ({role})")
            lines.append(f"  Password:   {password or ''} {note}".rstrip())
        lines += [
            f"  Staff API token: {token}",
            f"  Demo site:  {site.name} ({site.domain}), origins {', '.join(site.allowed_origins)}",
            f"  Site key:   {site.public_key}",
            f"  Secret key: {secret_key} (new at every launch; the shop's stock feed uses it)",
            f"  API docs:   {base_url}/api/docs/",
            "=" * 72,
        ]
        return "\n".join(lines)

    # Children ----------------------------------------------------------------------

    def start_children(self, children: list[Child], host: str, port: int, access_log: bool) -> None:
        """Start web, the workers and beat, appending each to ``children`` as soon as it runs."""
        python = sys.executable
        web = [python, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port)]
        if not access_log:
            web.append("--no-access-log")
        schedule = Path(settings.DATA_DIR) / "celerybeat-schedule"
        # Routine periodic runs log at debug (config/logfilters.py): LOG_LEVEL=DEBUG shows them.
        level = os.environ.get("LOG_LEVEL", "INFO").lower()
        # One worker per queue (config/settings.py): the hot one never waits behind batch work.
        specs = [
            ("web", web),
            ("worker-hot", self.worker_argv(settings.QUEUE_HOT, concurrency=1, level=level)),
            ("worker-batch", self.worker_argv(settings.QUEUE_BATCH, concurrency=2, level=level)),
            ("beat", [python, "-m", "celery", "-A", "config", "beat", "-l", level, "--schedule", str(schedule)]),
        ]
        # Only this machine reaches a server on a loopback address, so it may believe one
        # X-Forwarded-For hop: ``simulate``'s visitors keep their own addresses (README).
        local = host in ("127.0.0.1", "localhost", "::1") and "RATE_LIMIT_TRUSTED_PROXIES" not in os.environ
        web_env = {"RATE_LIMIT_TRUSTED_PROXIES": "1"} if local else None
        for name, argv in specs:
            self.start_child(children, name, argv, env=web_env if name == "web" else None)

    @staticmethod
    def worker_argv(queue: str, *, concurrency: int, level: str) -> list[str]:
        """A Celery worker consuming only ``queue``, named after it."""
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
            "--concurrency",
            str(concurrency),
            "-l",
            level,
        ]

    def start_child(self, children: list[Child], name: str, argv: list[str], env: dict | None = None) -> None:
        child = Child(name, argv, cwd=settings.BASE_DIR, out=self.say, env={**plain_http_environment(), **(env or {})})
        children.append(child)
        self.say(f"Started {name} (pid {child.pid}): {' '.join(argv[1:])}")

    def check_port_free(self, host: str, port: int) -> None:
        """Refuse to start when something listens already: the health checks, the shop
        and the browser would talk to it instead of to our server."""
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.settimeout(1)
            if probe.connect_ex((host, port)) == 0:
                raise CommandError(
                    f"Something listens on {host}:{port} already; stop it or choose other ports (--port, --shop-port)."
                )

    def wait_healthy(self, base_url: str, children: list[Child], what: str = "The web server") -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self.check_alive(children)
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    self.say(f"{what} answers at {base_url}.")
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise CommandError(f"{base_url}/healthz did not answer within {HEALTH_TIMEOUT_SECONDS} s.")

    def check_alive(self, children: list[Child]) -> None:
        for child in children:
            code = child.exited()
            if code is not None:
                raise CommandError(f"{child.name} (pid {child.pid}) exited ({_status(code)}); stopped everything.")

    def watch(self, children: list[Child]) -> None:
        while True:
            self.check_alive(children)
            time.sleep(0.5)

    def stop(self, children: list[Child]) -> None:
        """SIGTERM to every child (web first, so no new requests arrive; the shop last), then wait; kill stragglers."""
        for child in children:
            child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in children:
            code = child.wait(timeout=max(0.1, deadline - time.monotonic()))
            self.say(f"{child.name} (pid {child.pid}) stopped ({_status(code)}).")

    def say(self, text: str) -> None:
        with self._lock:
            self.stdout.write(text)
            self.stdout.flush()
