"""A backlog of idle sessions (issue 11): ``idle_sessions``.

A fresh site gets ``sessions`` (default 200,000) open sessions idle for two hours, two
touchpoints each, written with set-based SQL (:mod:`devtools.idle_backlog`): what a
worker outage leaves behind. Then, at the same time:

- the bench process closes them the way the closing task does, run after run
  (:func:`journeys.services.sessions.sessions_close_idle` with the task's
  ``SESSION_CLOSE_BATCH_SIZE`` and ``SESSION_CLOSE_BUDGET_SECONDS``; in production one
  run per minute, here back to back), limited to the bench's site;
- a real hot-queue Celery worker (one process, as ``make run`` starts it) runs the
  scarcity evidence and monitor counters tasks, which a thread of the bench process
  sends every ``interval`` seconds (as beat does; beat's own cadence is 60 s and 5 s),
  each time waiting until both ran.

What is measured:
- closing: the total time, the runs of at most the budget it took, the batches, the
  median and the longest batch transaction (each batch is one transaction);
- the hot tasks while closing: how late each run started (message sent to run
  started, as :class:`core.models.PeriodicTaskState` records it), and the longest time
  between two evidence runs finishing: how stale cue evidence got.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics.tasks import monitor_counters_task
from core.models import PeriodicTaskState
from devtools.benchmarks.base import (
    Benchmark,
    BenchOptions,
    BenchResult,
    Check,
    Series,
    bench_site_delete,
    machine_busy,
    vacuum,
)
from devtools.idle_backlog import idle_sessions_insert
from journeys.models import JourneySession, Touchpoint, Visitor
from journeys.services.sessions import sessions_close_idle
from journeys.services.sites import site_create
from personalization.tasks import scarcity_evidence_task

HOT_TASKS = (monitor_counters_task, scarcity_evidence_task)
EVIDENCE_BUDGET_SECONDS = 60.0  # PRODUCT.md: evidence counters refreshed at least every minute


def _runs(task) -> tuple[int, float | None, object]:
    state = PeriodicTaskState.objects.filter(key=task.name).first()
    return (state.runs, state.last_lateness_seconds, state.last_finished_at) if state else (0, None, None)


class HotSender(threading.Thread):
    """Sends both hot tasks every ``interval`` seconds to ``queue``; records each run's lateness."""

    def __init__(self, queue: str, interval: float) -> None:
        super().__init__(name="hot-sender", daemon=True)
        self.queue, self.interval = queue, interval
        self.stop = threading.Event()
        self.lateness: dict[str, list[float]] = {task.name: [] for task in HOT_TASKS}
        self.evidence_finished: list = []
        self.missed = 0  # rounds where a task did not run within 30 s
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            counts = {task.name: _runs(task)[0] for task in HOT_TASKS}
            while not self.stop.is_set():
                started = time.monotonic()
                for task in HOT_TASKS:
                    task.apply_async(queue=self.queue)
                for task in HOT_TASKS:
                    deadline = time.monotonic() + 30
                    while (found := _runs(task))[0] <= counts[task.name] and time.monotonic() < deadline:
                        time.sleep(0.02)
                    if found[0] <= counts[task.name]:
                        self.missed += 1
                        continue
                    counts[task.name] = found[0]
                    self.lateness[task.name].append(found[1])
                    if task is scarcity_evidence_task:
                        self.evidence_finished.append(found[2])
                self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        except BaseException as error:  # reported by the benchmark
            self.error = error
        finally:
            connection.close()


def _hot_worker(queue: str, log_path: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-n", f"{queue}@%h"]
    argv += ["--concurrency", "1", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"]
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            argv, cwd=settings.BASE_DIR, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and worker.poll() is None and b" ready." not in log_path.read_bytes():
        time.sleep(0.2)
    if worker.poll() is not None or b" ready." not in log_path.read_bytes():
        worker.kill()
        raise RuntimeError(f"the hot worker did not start:\n{log_path.read_text()[-2000:]}")
    return worker


def _stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _site_delete(site) -> None:
    """The bench's rows in set-based SQL (the ORM's cascade would take minutes), then the site."""
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (Touchpoint, JourneySession, Visitor):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE site_id = %s", [site.pk])
    bench_site_delete(site)


def run(options: BenchOptions) -> BenchResult:
    count = options.param("sessions", 20_000 if options.quick else 200_000, int)
    interval = options.param("interval", 1.0, float)
    batch_size = options.param("batch", settings.SESSION_CLOSE_BATCH_SIZE, int)
    budget = settings.SESSION_CLOSE_BUDGET_SECONDS
    token = uuid.uuid4().hex[:10]
    site = site_create(name=f"bench idle {token}", domain=f"bench-idle-{token}.invalid")
    result = BenchResult(name="idle_sessions")
    worker = None
    sender = None
    try:
        options.log(f"   writing {count:,} idle sessions ...")
        clock = time.perf_counter()
        idle_sessions_insert(site, count, last_activity_at=timezone.now() - timedelta(hours=2))
        insert_seconds = time.perf_counter() - clock
        vacuum(JourneySession, Touchpoint, Visitor)
        background = machine_busy()
        queue = f"bench-hot-{token}"
        log_path = Path(settings.BASE_DIR) / "bench-results" / "idle-sessions-hot-worker.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        worker = _hot_worker(queue, log_path)
        sender = HotSender(queue, interval)
        sender.start()
        time.sleep(2 * interval)  # a few hot runs before, as a baseline

        options.log(f"   closing them in batches of {batch_size:,}, runs of at most {budget:.0f} s ...")
        batches: list[float] = []
        runs_needed = closed = 0
        clock = time.perf_counter()
        while True:
            this_run = sessions_close_idle(
                idle_minutes=settings.SESSION_IDLE_MINUTES,
                batch_size=batch_size,
                budget_seconds=budget,
                site_id=site.pk,
                on_batch=lambda n, seconds: batches.append(seconds * 1000),
            )
            if not this_run:
                break
            runs_needed += 1
            closed += this_run
        close_seconds = time.perf_counter() - clock
        sender.stop.set()
        sender.join(60)
        if sender.error:
            raise sender.error
    finally:
        if sender is not None:
            sender.stop.set()
        if worker is not None:
            _stop(worker)
        _site_delete(site)

    still_open = count - closed
    evidence_gaps = [
        (later - earlier).total_seconds()
        for earlier, later in zip(sender.evidence_finished, sender.evidence_finished[1:], strict=False)
    ]
    result.series = [
        Series("sessions written (SQL)", "s", [round(insert_seconds, 1)]),
        Series("closing: total", "s", [round(close_seconds, 1)]),
        Series("closing: sessions per second", "1/s", [round(closed / close_seconds)]),
        Series(f"closing: runs of <= {budget:.0f} s", "runs", [runs_needed]),
        Series("closing: batches", "batches", [len(batches)]),
        Series("batch transaction: median", "ms", [round(statistics.median(batches), 1)]),
        Series("batch transaction: max", "ms", [round(max(batches), 1)]),
    ]
    for task in HOT_TASKS:
        values = sender.lateness[task.name]
        short = task.name.rsplit(".", 1)[1]
        result.series += [
            Series(f"{short}: runs (from 2 s before)", "runs", [len(values)]),
            Series(f"{short}: lateness median", "s", [round(statistics.median(values), 3) if values else None]),
            Series(f"{short}: lateness max", "s", [round(max(values), 3) if values else None]),
        ]
    longest_gap = max(evidence_gaps) if evidence_gaps else None
    result.series.append(Series("evidence: longest gap between runs", "s", [round(longest_gap or 0, 2)]))
    result.checks = [
        Check("idle sessions left open after closing", still_open, 0, "sessions", higher_is_better=False),
        Check("hot runs missing (not run within 30 s)", sender.missed, 0, "runs", higher_is_better=False),
        Check(
            f"scarcity evidence age while closing a {count:,} backlog",
            longest_gap if longest_gap is not None else float("inf"),
            EVIDENCE_BUDGET_SECONDS,
            "s",
            higher_is_better=False,
        ),
    ]
    result.setup = {
        "summary": (
            f"{count:,} idle sessions (2 touchpoints each); batches of {batch_size:,}, runs of <= {budget:.0f} s; "
            f"hot tasks sent every {interval:g} s to a one-process hot worker"
        ),
        "sessions": count,
        "batch_size": batch_size,
        "budget_seconds": budget,
        "hot_interval_seconds": interval,
        "machine_busy_before": background,
    }
    result.notes = [
        f"background load before closing: {background:.0%} of all cores busy" if background is not None else "",
        "lateness: from the task's message being sent to its run starting (core_periodictaskstate)",
        "evidence gap: between two scarcity evidence runs finishing, i.e. the oldest the cues' evidence got",
    ]
    return result


BENCHMARK = Benchmark(
    "idle_sessions",
    "closing a backlog of 200,000 idle sessions while the hot queue's tasks keep running",
    run,
)
