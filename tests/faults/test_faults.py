"""The fault suite: a production-style deployment on servers of its own, broken under mixed traffic.

One deployment (``harness.Deployment``: gunicorn with 3 workers, a Celery worker and
beat) on the suite's own PostgreSQL and Redis serves every scenario, in order. Each
scenario prints its figures (``[faults]`` lines): answers per phase and endpoint by
status class, events and conversions acknowledged and stored, recovery times.

``make test`` runs it with short faults (Redis stopped 10 s and frozen 5 s, PostgreSQL 5 s,
erase race 10 s); ``make faults`` with the issue's (30 s, 15 s, 30 s; Redis frozen 10 s):
``FAULT_*_SECONDS``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from analytics.models import RollupDirtyDay
from analytics.rollups import ROLLUP_MODELS
from tests.faults.harness import (
    ENDPOINTS,
    Deployment,
    Durations,
    Traffic,
    report,
    rollup_rows,
    servers,
    stored_once,
    wait_until,
)

pytestmark = pytest.mark.faults

ROLLUP_TABLES = [model._meta.db_table for model in ROLLUP_MODELS]
MARKS_TABLE = RollupDirtyDay._meta.db_table


@pytest.fixture(scope="module")
def durations() -> Durations:
    return Durations.from_env()


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    started = time.monotonic()
    with servers() as (root, postgres, redis):
        servers_up = time.monotonic()
        deployment = Deployment(root, postgres, redis)
        try:
            deployment.prepare()
            prepared = time.monotonic()
            deployment.start_web()
            deployment.start_worker()
            deployment.start_beat()
            report(
                f"deployment up in {time.monotonic() - started:.1f} s (servers {servers_up - started:.1f} s, "
                f"migrate and seed {prepared - servers_up:.1f} s, processes {time.monotonic() - prepared:.1f} s): "
                f"gunicorn x{deployment.web_workers} on :{deployment.port}, Celery worker and beat, "
                f"PostgreSQL :{postgres.port}, Redis :{redis.port}"
            )
            yield deployment
        finally:
            deployment.stop()
            report(f"logs in {deployment.keep_logs()}")


def traffic_for(deployment: Deployment, **options) -> Traffic:
    traffic = Traffic(deployment.base_url, deployment.seed.site_key, **options).start()
    wait_until(lambda: traffic.journeys >= 5, 60, "five journeys before the fault")
    return traffic


def assert_stored_exactly_once(deployment: Deployment, traffic: Traffic) -> None:
    events = stored_once(deployment.postgres, "journeys_touchpoint", traffic.acked_events)
    conversions = stored_once(deployment.postgres, "journeys_conversionevent", traffic.acked_conversions)
    report(
        f"  acknowledged events {len(traffic.acked_events)}: stored {events[0]}, missing {events[1]}, "
        f"doubled {events[2]}; conversions {len(traffic.acked_conversions)}: stored {conversions[0]}, "
        f"missing {conversions[1]}, doubled {conversions[2]}"
    )
    assert traffic.acked_events and traffic.acked_conversions
    assert events == (len(traffic.acked_events), 0, 0)
    assert conversions == (len(traffic.acked_conversions), 0, 0)


def test_redis_stopped_under_mixed_traffic(deployment, durations):
    traffic = traffic_for(deployment)

    traffic.phase = "outage"
    deployment.redis.stop()
    time.sleep(durations.redis_down)
    deployment.redis.start()
    traffic.phase = "after"
    time.sleep(3)
    traffic.stop()

    traffic.report(f"Redis stopped {durations.redis_down:.0f} s")
    served = {endpoint: traffic.count(phase="outage", endpoint=endpoint, cls="2xx") for endpoint in ENDPOINTS}
    report(f"  answered 2xx while Redis was down: {served}")
    assert traffic.count(cls="5xx") == traffic.count(cls="503") == traffic.count(cls="none") == 0
    assert traffic.count(cls="4xx") == 0
    assert all(count > 0 for count in served.values()), served
    assert traffic.unexpected == []
    assert_stored_exactly_once(deployment, traffic)


def test_redis_frozen_under_mixed_traffic(deployment, durations):
    """A hung Redis (SIGSTOP) accepts connections and never answers: each web process waits
    ``REDIS_SOCKET_TIMEOUT`` once, then skips Redis for ``REDIS_RETRY_SECONDS``."""
    traffic = traffic_for(deployment)

    traffic.phase = "frozen"
    deployment.redis.freeze()
    try:
        time.sleep(durations.redis_frozen)
    finally:
        deployment.redis.thaw()
    traffic.phase = "after"
    time.sleep(3)
    traffic.stop()

    traffic.report(f"Redis frozen (SIGSTOP) {durations.redis_frozen:.0f} s")
    slowest = max(answer.seconds for answer in traffic.answers if answer.phase == "frozen")
    report(f"  slowest answer while frozen: {slowest * 1000:.0f} ms")
    assert traffic.count(cls="5xx") == traffic.count(cls="503") == traffic.count(cls="none") == 0
    assert traffic.count(cls="4xx") == 0
    assert all(traffic.count(phase="frozen", endpoint=endpoint, cls="2xx") > 0 for endpoint in ENDPOINTS)
    assert traffic.unexpected == []
    assert_stored_exactly_once(deployment, traffic)


def test_postgres_restarted_and_stopped_under_mixed_traffic(deployment, durations):
    traffic = traffic_for(deployment)

    # A restart: every persistent connection the web workers hold is cut
    traffic.phase = "restart"
    deployment.postgres.restart()
    time.sleep(2)
    # And an outage
    deployment.postgres.stop()
    traffic.phase = "outage"  # sent while PostgreSQL is certainly stopped
    time.sleep(durations.postgres_down)
    traffic.phase = "after"
    deployment.postgres.start()
    back = time.monotonic()
    wait_until(lambda: all(first_success(traffic, e, back) for e in ENDPOINTS), 60, "every endpoint to answer 2xx")
    time.sleep(2)
    traffic.stop()

    traffic.report(f"PostgreSQL restarted, then stopped {durations.postgres_down:.0f} s")
    recovery = {endpoint: round(first_success(traffic, endpoint, back) - back, 2) for endpoint in ENDPOINTS}
    report(f"  recovery (s from PostgreSQL accepting connections to the endpoint's first 2xx): {recovery}")
    outage = {a.status for a in traffic.answers if a.phase == "outage"}
    no_retry_after = [a for a in traffic.answers if a.status == 503 and not a.retry_after]
    after_recovery = [
        a for a in traffic.answers if a.phase == "after" and a.at > first_success(traffic, a.endpoint, back)
    ]
    report(
        f"  503 answered: {traffic.count(cls='503')} (without Retry-After: {len(no_retry_after)}); "
        f"500s: {traffic.count(cls='5xx')}; non-2xx after each endpoint's recovery: "
        f"{sum(1 for a in after_recovery if not 200 <= a.status < 300)}"
    )
    assert traffic.count(cls="5xx") == traffic.count(cls="none") == traffic.count(cls="4xx") == 0
    assert outage == {503}
    assert no_retry_after == []
    assert [a for a in after_recovery if not 200 <= a.status < 300] == []
    assert traffic.unexpected == []
    assert_stored_exactly_once(deployment, traffic)


def first_success(traffic: Traffic, endpoint: str, since: float) -> float | None:
    """When the first 2xx of ``endpoint`` sent after ``since`` arrived."""
    times = [a.at for a in list(traffic.answers) if a.endpoint == endpoint and a.at >= since and 200 <= a.status < 300]
    return min(times) if times else None


def test_kill_9_of_web_workers_and_of_the_celery_worker_mid_work(deployment):
    traffic = traffic_for(deployment)
    traffic.phase = "kills"

    # kill -9 of a gunicorn worker, twice, under traffic: in-flight requests get no answer and are retried
    killed_web = []
    for _ in range(2):
        victim = deployment.web_worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        killed_web.append(victim)
        wait_until(
            lambda v=victim: (
                v not in deployment.web_worker_pids() and len(deployment.web_worker_pids()) == deployment.web_workers
            ),
            30,
            "gunicorn to replace its killed worker",
        )
        time.sleep(1)

    # kill -9 of the Celery pool process in the middle of a rollup run (its transaction open)
    pool = kill_during_rollup(deployment, lambda: kill_all(deployment.children("worker")))
    wait_until(lambda: deployment.children("worker") not in ([], pool), 60, "the worker to replace its pool process")
    # and of the whole Celery worker (main and pool) in the middle of one; a new worker takes over
    kill_during_rollup(deployment, lambda: os.killpg(deployment.processes["worker"].pid, signal.SIGKILL))
    deployment.processes.pop("worker").wait()
    deployment.start_worker("worker2")

    traffic.phase = "after"
    time.sleep(2)
    traffic.stop()
    traffic.report(f"kill -9 of gunicorn workers {killed_web}, of the Celery pool {pool} and of the whole worker")
    assert traffic.count(cls="5xx") == traffic.count(cls="503") == traffic.count(cls="4xx") == 0
    assert traffic.unexpected == []
    assert_stored_exactly_once(deployment, traffic)

    # Rollups through the new worker, until every mark is consumed; then compare with a recompute
    pending = marks(deployment)
    deployment.send_task("analytics.tasks.rollups_update_task")
    wait_until(lambda: marks(deployment) == 0, 120, "the rollup marks to be consumed", interval=0.5)
    incremental = rollup_rows(deployment.postgres, ROLLUP_TABLES)
    deployment.manage("rollups_recompute")
    recomputed = rollup_rows(deployment.postgres, ROLLUP_TABLES)
    report(
        f"  dirty marks before the last rollup run {pending}, after 0; "
        f"rows per rollup table {[len(rows) for rows in incremental.values()]}; "
        f"equal to a recompute: {incremental == recomputed}"
    )
    assert incremental == recomputed
    assert incremental["analytics_sessiondaily"]


def marks(deployment: Deployment) -> int:
    with deployment.postgres.connect(Deployment.DATABASE) as conn:
        return conn.execute(f"SELECT count(*) FROM {MARKS_TABLE}").fetchone()[0]


def kill_all(pids: list[int]) -> list[int]:
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


def kill_during_rollup(deployment: Deployment, kill):
    """Run a rollup on the worker, hold it mid-transaction on a lock of its last table, ``kill()``, release.

    The run has consumed the marks and rewritten most tables inside its transaction when it
    waits; the killed process never commits, so PostgreSQL rolls all of it back.
    """
    with deployment.postgres.connect(Deployment.DATABASE) as holder:
        holder.execute("BEGIN")
        holder.execute(f"LOCK TABLE {ROLLUP_TABLES[-1]} IN ACCESS EXCLUSIVE MODE")
        me = holder.execute("SELECT pg_backend_pid()").fetchone()[0]
        deployment.send_task("analytics.tasks.rollups_update_task")
        wait_until(
            lambda: (
                holder.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [me]
                ).fetchone()[0]
                > 0
            ),
            60,
            "the worker's rollup run to wait on the held table",
        )
        result = kill()
        time.sleep(0.5)
        holder.execute("ROLLBACK")
    return result


def test_erase_racing_the_visitors_traffic(deployment, durations):
    visitor = f"v-erase-{uuid.uuid4().hex[:8]}"
    traffic = traffic_for(deployment, visitor=visitor, threads=3)
    traffic.phase = "race"
    erase = requests.Session()
    erase.headers.update(
        {"Authorization": f"Token {deployment.seed.staff_token}", "X-Site-Key": deployment.seed.site_key}
    )
    statuses: list[int] = []
    failures: list[str] = []

    def eraser() -> None:
        deadline = time.monotonic() + durations.erase_race
        while time.monotonic() < deadline:
            response = erase.delete(f"{deployment.base_url}/api/v1/visitors/{visitor}", timeout=30)
            statuses.append(response.status_code)
            if response.status_code not in (204, 404):
                failures.append(f"{response.status_code}: {response.text[:300]}")
            time.sleep(0.05)

    thread = threading.Thread(target=eraser)
    thread.start()
    thread.join()
    traffic.stop()
    final = erase.delete(f"{deployment.base_url}/api/v1/visitors/{visitor}", timeout=30).status_code

    traffic.report(f"erase racing the visitor's traffic for {durations.erase_race:.0f} s")
    left = tables_naming(deployment, [visitor, f"{traffic.prefix}-"])
    report(
        f"  erasures: {len(statuses)} ({statuses.count(204)} x 204, {statuses.count(404)} x 404, "
        f"{len(failures)} other); final erase {final}; tables still naming the visitor: {left}"
    )
    assert failures == []
    assert statuses.count(204) > 0
    assert traffic.count(cls="5xx") == traffic.count(cls="503") == 0
    assert final in (204, 404)
    assert left == []


def tables_naming(deployment: Deployment, texts: list[str]) -> list[str]:
    """Tables of the deployment's database with a row whose text contains any of ``texts``."""
    found = []
    with deployment.postgres.connect(Deployment.DATABASE) as conn:
        tables = [
            row[0]
            for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        ]
        for table in tables:
            for text in texts:
                hit = conn.execute(
                    f'SELECT 1 FROM "{table}" AS t WHERE strpos(t::text, %s) > 0 LIMIT 1', [text]
                ).fetchone()
                if hit:
                    found.append(table)
                    break
    return found
