"""The budgets of PRODUCT.md section 9, measured on a real server and database.

Budgets are checked here and only here (``python manage.py bench``), never by timed
tests: a laptop under load must not fail the test suite, and a budget measured once
per change on a quiet machine says more than a thousand flaky assertions.

Each benchmark is a plain function, listed as a :class:`Benchmark` in :mod:`devtools.benchmarks`. It
takes :class:`BenchOptions` and returns a :class:`BenchResult`: the numbers it measured
(every run and the median), the budgets it checks, and how it was set up, so a reader
of ``bench-results/bench.json`` can tell what exactly was measured.

Benchmarks create their own site and data, and delete them afterwards; they never
touch another site's rows.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.development import plain_http_environment
from journeys.models import (
    IdempotencyConflict,
    JourneySession,
    QuarantinedEvent,
    Site,
    Touchpoint,
    Visitor,
)
from journeys.services.sites import site_create

SEED_FLOOR_EVENTS_PER_MINUTE = 100_000


# --- registry -----------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    quick: bool = False
    repeats: int = 3
    log: Callable[[str], None] = print
    # Per-benchmark knobs given on the command line (``--set server=gunicorn``).
    params: dict[str, str] = field(default_factory=dict)

    def param(self, name: str, default, cast=str):
        return cast(self.params[name]) if name in self.params else default


@dataclass
class Check:
    """One budget of PRODUCT.md section 9 against what was measured."""

    what: str
    measured: float
    budget: float
    unit: str = ""
    higher_is_better: bool = True

    @property
    def passed(self) -> bool:
        return self.measured >= self.budget if self.higher_is_better else self.measured <= self.budget


@dataclass
class Series:
    """A measured quantity: every run (None where it could not be measured) and the median."""

    label: str
    unit: str
    runs: list[float | None]

    @property
    def median(self) -> float | None:
        measured = [run for run in self.runs if run is not None]
        return statistics.median(measured) if measured else None


@dataclass
class BenchResult:
    name: str
    series: list[Series] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    setup: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "series": [{**asdict(s), "median": s.median} for s in self.series],
            "checks": [{**asdict(c), "passed": c.passed} for c in self.checks],
            "setup": self.setup,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[[BenchOptions], BenchResult]


def run_benchmarks(benchmarks: dict[str, Benchmark], names: list[str], options: BenchOptions) -> dict:
    """Run the named ``benchmarks`` in their listed order; returns the document for bench.json."""
    unknown = sorted(set(names) - set(benchmarks))
    if unknown:
        raise KeyError(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(benchmarks)}")
    results = {}
    for name in [n for n in benchmarks if n in names]:
        options.log(f"== {name}: {benchmarks[name].description}")
        started = time.monotonic()
        result = benchmarks[name].run(options)
        results[name] = {**result.as_dict(), "seconds": round(time.monotonic() - started, 1)}
    return {"environment": environment(options), "benchmarks": results}


def environment(options: BenchOptions) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
    return {
        "at": timezone.now().isoformat(),
        "quick": options.quick,
        "repeats": options.repeats,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": postgres,
        "autovacuum": autovacuum,
        "platform": platform.platform(),
        "git": _git_revision(),
    }


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def render(document: dict) -> str:
    """The readable table printed after a run."""
    lines: list[str] = []
    for name, result in document["benchmarks"].items():
        setup = result["setup"]
        lines.append(f"{name}: {setup.get('summary', '')}")
        width = max([len(s["label"]) for s in result["series"]] + [10])
        runs = max((len(s["runs"]) for s in result["series"]), default=0)
        head = "".join(f"{f'run {i + 1}':>12}" for i in range(runs))
        lines.append(f"  {'':<{width}}{head}{'median':>12}")
        for series in result["series"]:
            cells = "".join(f"{_number(v):>12}" for v in series["runs"])
            lines.append(f"  {series['label']:<{width}}{cells}{_number(series['median']):>12}  {series['unit']}")
        lines.extend(f"  {note}" for note in result["notes"])
        lines.append("")
    checks = [(name, c) for name, r in document["benchmarks"].items() for c in r["checks"]]
    if checks:
        width = max(len(c["what"]) for _, c in checks)
        lines.append(f"{'budget (PRODUCT.md section 9)':<{width}}  {'measured':>12}  {'budget':>14}  result")
        for _, check in checks:
            sign = ">=" if check["higher_is_better"] else "<="
            budget = f"{sign} {_number(check['budget'])}"
            lines.append(
                f"{check['what']:<{width}}  {_number(check['measured']):>12}  {budget:>14}  "
                f"{'PASS' if check['passed'] else 'FAIL'}  {check['unit']}"
            )
    return "\n".join(lines)


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


# --- machinery shared by the HTTP benchmarks ----------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServerSpec:
    """How to run the web application as a real server in a subprocess."""

    kind: str  # "gunicorn" or "uvicorn"
    workers: int
    threads: int = 1

    @property
    def label(self) -> str:
        if self.kind == "gunicorn":
            model = "sync" if self.threads == 1 else f"gthread x{self.threads} threads"
            return f"gunicorn config.wsgi ({model}), {self.workers} workers"
        return f"uvicorn config.asgi (uvloop, httptools), {self.workers} workers"

    def command(self, port: int) -> list[str]:
        if self.kind == "gunicorn":
            command = [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
            command += ["--bind", f"127.0.0.1:{port}", "--workers", str(self.workers)]
            if self.threads > 1:
                command += ["--worker-class", "gthread", "--threads", str(self.threads)]
            return command + ["--log-level", "warning", "--timeout", "120", "--keep-alive", "30"]
        if self.kind == "uvicorn":
            command = [sys.executable, "-m", "uvicorn", "config.asgi:application"]
            command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(self.workers)]
            return command + ["--no-access-log", "--log-level", "warning", "--lifespan", "off"]
        raise ValueError(f"unknown server kind {self.kind!r}")


# The rate limiter runs in the benchmark servers, so its cost is measured, but a benchmark's
# load comes from one address to one site: limits it never reaches (unless set in ours).
UNREACHED_RATE_LIMITS = {
    name: "1000000000" for name in ("RATE_LIMIT_ADDRESS_REQUESTS", "RATE_LIMIT_SITE_REQUESTS") if name not in os.environ
}


class Server:
    """A web server subprocess on a free 127.0.0.1 port, with this process's environment.

    ``DATABASE_URL``, ``REDIS_URL`` and the keys are in ``os.environ`` (``manage.py``
    exports the embedded servers' and the checkout's), so the server uses the same database. Its
    output goes to ``bench-results/server.log``, not to the bench's table. It runs the
    product's settings, or ``devtools.bench_settings`` (the product's, plus the bare
    reference endpoint) with ``reference=True``.
    """

    def __init__(self, spec: ServerSpec, *, reference: bool = False) -> None:
        self.spec = spec
        self.settings_module = "devtools.bench_settings" if reference else "config.settings"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = Path(settings.BASE_DIR) / "bench-results" / "server.log"

    def __enter__(self) -> Server:
        # Production settings, except over plain HTTP to 127.0.0.1 (no redirect to HTTPS).
        env = {
            **os.environ,
            **plain_http_environment(),
            **UNREACHED_RATE_LIMITS,
            "DJANGO_SETTINGS_MODULE": self.settings_module,
            "DEBUG": "false",
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            log.write(f"\n=== {timezone.now().isoformat()} {self.spec.label} on port {self.port}\n")
            log.flush()
            self.process = subprocess.Popen(
                self.spec.command(self.port),
                cwd=settings.BASE_DIR,
                env=env,
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.spec.kind} exited with {self.process.returncode}; see {self.log_path}")
            try:
                status, _ = request(self.port, "GET", "/healthz")
            except OSError:
                time.sleep(0.2)
                continue
            if status == 200:
                return self
            self.__exit__()
            raise RuntimeError(f"{self.spec.kind} answered /healthz with {status}; see {self.log_path}")
        self.__exit__()
        raise RuntimeError(f"{self.spec.kind} did not answer /healthz within 60 s; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # The server runs in its own session (process group): stop the master and workers.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (Linux /proc); None when unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _group_pids(pgid: int) -> list[int]:
    """The processes of one process group: a server's master and workers."""
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[2]) == pgid:
                        pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def _database_pids() -> list[int]:
    """The server processes of every client connection to this database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"
        )
        return [row[0] for row in cursor.fetchall()]


class CpuMeter:
    """Wall time and CPU use of one phase.

    Machine-wide busy share from /proc/stat; this process's CPU; and, when the
    processes are on this machine, the CPU of the web server's process group and of
    PostgreSQL's backends for this database. Processes that end inside the phase are
    not counted. Values are None where they cannot be read.
    """

    def __init__(self, *, server_pgid: int | None = None, database: bool = False) -> None:
        self.server_pgid = server_pgid
        self.database = database

    @staticmethod
    def _machine() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as stat:
                fields = [int(v) for v in stat.readline().split()[1:]]
        except OSError:
            return None
        return sum(fields), fields[3] + fields[4]

    def _processes(self) -> tuple[dict[int, float], dict[int, float]]:
        server = _group_pids(self.server_pgid) if self.server_pgid else []
        database = _database_pids() if self.database else []
        return (
            {pid: cpu for pid in server if (cpu := _cpu_seconds(pid)) is not None},
            {pid: cpu for pid in database if (cpu := _cpu_seconds(pid)) is not None},
        )

    def __enter__(self) -> CpuMeter:
        self.start_processes = self._processes()
        self.start = self._machine()
        self.process_start = time.process_time()
        self.wall_start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall_start
        self.process_cpu = time.process_time() - self.process_start
        end = self._machine()
        self.machine_busy = None
        if self.start and end and end[0] > self.start[0]:
            total, idle = end[0] - self.start[0], end[1] - self.start[1]
            self.machine_busy = 1 - idle / total
        server, database = self._processes()
        self.server_cpu = self._delta(self.start_processes[0], server) if self.server_pgid else None
        self.database_cpu = self._delta(self.start_processes[1], database) if self.database else None

    @staticmethod
    def _delta(before: dict[int, float], after: dict[int, float]) -> float | None:
        """CPU used in between; None when a process ended inside (its CPU is lost).

        Django reconnects after ``CONN_MAX_AGE`` and the ASGI server once per request,
        so a database figure is missing when that happened during the phase.
        """
        if not after or not before.keys() <= after.keys():
            return None
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def machine_busy(seconds: float = 2.0) -> float | None:
    """Share of all cores busy while this process sleeps: the background load."""
    with CpuMeter() as meter:
        time.sleep(seconds)
    return meter.machine_busy


# --- ingestion ----------------------------------------------------------------------

EVENT_TYPES = ["page_view", "page_view", "page_view", "scroll", "click", "click", "add_to_cart", "video_play"]
DEVICES = [
    {"type": "mobile", "viewport": "375x812", "os": "iOS 18", "browser": "Safari", "connection": "4g"},
    {"type": "desktop", "viewport": "1440x900", "os": "macOS", "browser": "Chrome", "connection": "wifi"},
    {"type": "tablet", "viewport": "820x1180", "os": "Android 15", "browser": "Chrome", "connection": "wifi"},
]


@dataclass
class BenchSessions:
    site: Site
    session_ids: list[str]
    pks: list[int]


def bench_site(label: str, sessions: int) -> BenchSessions:
    """A fresh site with ``sessions`` open sessions (one visitor each), made with the ORM."""
    token = uuid.uuid4().hex[:10]
    site = site_create(name=f"bench {label} {token}", domain=f"bench-{label}-{token}.invalid")
    now = timezone.now()
    with transaction.atomic():
        visitors = Visitor.objects.bulk_create(
            Visitor(site=site, visitor_id=f"bench-v-{i}", consent_personalization=True) for i in range(sessions)
        )
        rows = JourneySession.objects.bulk_create(
            JourneySession(
                site=site,
                visitor=visitor,
                session_id=f"bench-s-{i}",
                device_type=DEVICES[i % 3]["type"],
                source="tiktok" if i % 2 else "google",
                started_at=now - timedelta(minutes=30),
                last_activity_at=now - timedelta(minutes=30),
                journey_path="standard_conversion_funnel",
                conversion_probability=0.15,
                request_hash=hashlib.blake2b(f"bench-s-{i}".encode(), digest_size=16).hexdigest(),
            )
            for i, visitor in enumerate(visitors)
        )
    return BenchSessions(site, [row.session_id for row in rows], [row.pk for row in rows])


def bench_site_delete(site: Site) -> None:
    """Delete everything the benchmark wrote for its site; raw SQL for the big tables."""
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (Touchpoint, QuarantinedEvent, IdempotencyConflict):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE site_id = %s", [site.pk])
        site.delete()
    vacuum(Touchpoint, JourneySession, Visitor)


def vacuum(*models) -> None:
    """``VACUUM (ANALYZE)`` the tables a benchmark churned.

    The benchmarks delete what they wrote and update sessions many times over; where
    autovacuum is off (as on some CI servers) the dead rows would otherwise slow down
    every later phase and run, and the numbers would depend on what ran before.
    """
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {tables}")
