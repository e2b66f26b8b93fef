"""``manage.py launch``: everything ``make run`` needs, in one process tree.

Migrates, collects static files, makes sure the demo site and an ``admin`` superuser
exist, prints how to log in, then runs the web server, a Celery worker and Celery
beat as child processes until Ctrl-C or SIGTERM. The first time (the demo site has
no sessions yet) it also drives the API with simulated visitors, so the admin and
dashboards have something to show.

The children find PostgreSQL and Redis through ``DATABASE_URL`` and ``REDIS_URL`` in
their environment. Without them, importing the settings here has started the
embedded servers and exported their URLs, so the children share them; this process
exits last, after its children, and the embedded servers stop with it.
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

from journeys.models import JourneySession, Site
from journeys.services.sites import site_create

DEMO_SITE_NAME = "Demo Shop"
DEMO_SITE_DOMAIN = "demo.example"
ADMIN_USERNAME = "admin"
HEALTH_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 15


class Shutdown(Exception):
    """SIGTERM or SIGHUP arrived: stop like on Ctrl-C."""


def _raise_shutdown(signum, frame):
    raise Shutdown(signal.Signals(signum).name)


class Child:
    """A child process whose output is copied to ours, each line prefixed with its name."""

    def __init__(self, name: str, argv: list[str], *, cwd: Path, out) -> None:
        self.name = name
        self.argv = argv
        # Its own session: Ctrl-C reaches only the launcher, which stops the children
        # in order instead of all of them racing each other.
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
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
    help = "Migrate, set up the demo site and admin login, simulate traffic, run web, worker and beat."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--visitors", type=int, default=300, help="simulated visitors on the first launch")
        parser.add_argument("--no-simulate", action="store_true", help="do not simulate traffic")
        parser.add_argument("--access-log", action="store_true", help="log every HTTP request of the web server")

    def handle(self, *args, host, port, visitors, no_simulate, access_log, **options):
        self._lock = threading.Lock()
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health probe otherwise
        call_command("migrate", interactive=False, verbosity=1)
        call_command("collectstatic", interactive=False, verbosity=0)
        site = self.demo_site()
        password, password_note = self.admin_login()
        token = Token.objects.get_or_create(user=get_user_model().objects.get(username=ADMIN_USERNAME))[0].key
        has_sessions = JourneySession.objects.filter(site=site).exists()
        connections.close_all()

        local = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
        base_url = f"http://{local}:{port}"
        banner = self.banner(base_url, site, password, password_note, token)
        self.say(banner)

        signal.signal(signal.SIGTERM, _raise_shutdown)
        signal.signal(signal.SIGHUP, _raise_shutdown)
        children: list[Child] = []
        failure: str | None = None
        try:
            self.check_port_free(local, port)
            self.start_children(children, host, port, access_log)
            self.wait_healthy(base_url, children)
            if no_simulate:
                self.say("Not simulating traffic (--no-simulate).")
            elif has_sessions:
                self.say(f"{site.name} has sessions already; not simulating traffic.")
            else:
                call_command(
                    "simulate",
                    site_key=site.public_key,
                    visitors=visitors,
                    seed=1,
                    base_url=base_url,
                    stdout=self.stdout,
                    stderr=self.stderr,
                )
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

    def demo_site(self) -> Site:
        site = Site.objects.filter(domain=DEMO_SITE_DOMAIN).first()
        if site is None:
            site = site_create(name=DEMO_SITE_NAME, domain=DEMO_SITE_DOMAIN)
            self.say(f"Created the demo site {site.name} ({site.domain}).")
        return site

    @transaction.atomic
    def admin_login(self) -> tuple[str | None, str]:
        """The ``admin`` superuser and its password, kept in ``.data/admin-password``.

        The password is generated once and reused. If the file is gone, a new one is
        set. If someone changed the password since, it is left alone and not shown.
        """
        password_file = Path(settings.DATA_DIR) / "admin-password"
        stored = password_file.read_text().strip() if password_file.exists() else ""
        User = get_user_model()
        user = User.objects.select_for_update().filter(username=ADMIN_USERNAME).first()
        if user is not None and stored and not user.check_password(stored):
            return None, f"(changed since it was generated; {password_file} holds the old one)"
        password = stored or secrets.token_urlsafe(12)
        if user is None:
            User.objects.create_superuser(ADMIN_USERNAME, email="", password=password)
        elif not stored:
            user.set_password(password)
            user.save(update_fields=["password"])
        if not (user is None or (user.is_staff and user.is_superuser and user.is_active)):
            user.is_staff = user.is_superuser = user.is_active = True
            user.save(update_fields=["is_staff", "is_superuser", "is_active"])
        if not stored:
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.touch(mode=0o600)
            password_file.write_text(password + "\n")
        return password, f"(kept in {password_file})"

    def banner(self, base_url: str, site: Site, password: str | None, note: str, token: str) -> str:
        return "\n".join(
            [
                "",
                "=" * 72,
                f"  Admin:      {base_url}/admin/",
                f"  Login:      {ADMIN_USERNAME}",
                f"  Password:   {password or ''} {note}".rstrip(),
                f"  Staff API token: {token}",
                f"  Demo site:  {site.name} ({site.domain})",
                f"  Site key:   {site.public_key}",
                f"  API docs:   {base_url}/api/docs/",
                "=" * 72,
            ]
        )

    # Children ----------------------------------------------------------------------

    def start_children(self, children: list[Child], host: str, port: int, access_log: bool) -> None:
        """Start web, worker and beat, appending each to ``children`` as soon as it runs."""
        python = sys.executable
        web = [python, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port)]
        if not access_log:
            web.append("--no-access-log")
        schedule = Path(settings.DATA_DIR) / "celerybeat-schedule"
        specs = [
            ("web", web),
            ("worker", [python, "-m", "celery", "-A", "config", "worker", "--concurrency", "2", "-l", "info"]),
            ("beat", [python, "-m", "celery", "-A", "config", "beat", "-l", "info", "--schedule", str(schedule)]),
        ]
        for name, argv in specs:
            child = Child(name, argv, cwd=settings.BASE_DIR, out=self.say)
            children.append(child)
            self.say(f"Started {name} (pid {child.pid}): {' '.join(argv[1:])}")

    def check_port_free(self, host: str, port: int) -> None:
        """Refuse to start when something listens already: the health check and the
        simulation would talk to it instead of to our server."""
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.settimeout(1)
            if probe.connect_ex((host, port)) == 0:
                raise CommandError(f"Something listens on {host}:{port} already; stop it or pass --port.")

    def wait_healthy(self, base_url: str, children: list[Child]) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self.check_alive(children)
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    self.say(f"The web server answers at {base_url}.")
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
        """SIGTERM to every child (web first, so no new requests arrive), then wait; kill stragglers."""
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
