"""A backlog of idle sessions on real Celery workers, one per queue (as README deploys them):
the hot tasks keep running on time while the backlog is closed, the batch worker's other
slot stays free for other batch work, and two copies of the closing task never both run."""

from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.tasks import monitor_counters_task, rollups_update_task
from config.celery import app as celery_app
from core.models import PeriodicTaskState
from devtools.idle_backlog import CHECKOUT_URL, idle_sessions_insert
from journeys.models import JourneySession
from journeys.tasks import close_idle_sessions_task
from personalization.tasks import scarcity_evidence_task
from tests.processes import celery_worker, wait_for

BACKLOG = 20_000
ON_TIME_SECONDS = 3.0  # a hot run starts this soon after being sent (the promise is "every minute")


def state(task) -> PeriodicTaskState | None:
    return PeriodicTaskState.objects.filter(key=task.name).first()


def runs(task) -> int:
    found = state(task)
    return found.runs if found else 0


def open_idle() -> int:
    return JourneySession.objects.filter(ended_at=None).count()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_hot_tasks_run_on_time_while_a_backlog_of_idle_sessions_is_closed(site, tmp_path):
    # given: 20,000 sessions idle for two hours, two copies of the closing task queued at once
    # (as when beat sends again during a long run), a hot worker and a two-slot batch worker
    last_activity = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    idle_sessions_insert(site, BACKLOG, last_activity_at=last_activity, session_seconds=600)
    assert open_idle() == BACKLOG
    hot, batch = f"hot-test-{uuid.uuid4().hex[:10]}", f"batch-test-{uuid.uuid4().hex[:10]}"
    # Small batches stretch the closing over two thousand short transactions (seconds even
    # on a fast, idle machine), so the hot tasks are sent several times while it runs.
    closing = {"SESSION_CLOSE_BATCH_SIZE": "10"}
    celery_app.conf.task_always_eager = False
    try:
        with celery_worker(hot, tmp_path / "hot.log"):
            close_idle_sessions_task.apply_async(queue=batch)
            close_idle_sessions_task.apply_async(queue=batch)
            with celery_worker(batch, tmp_path / "batch.log", concurrency=2, pool="prefork", env=closing):
                assert wait_for(lambda: open_idle() < BACKLOG, 60), (tmp_path / "batch.log").read_text()

                # when: while the backlog is being closed, the hot tasks are sent every half
                # second (as beat does, faster), and one batch task besides the closing
                rollups_update_task.apply_async(queue=batch)
                lateness = {monitor_counters_task.name: [], scarcity_evidence_task.name: []}
                rounds = rounds_while_closing = 0
                deadline = time.monotonic() + 300
                while runs(close_idle_sessions_task) == 0 and time.monotonic() < deadline:
                    rounds += 1
                    monitor_counters_task.apply_async(queue=hot)
                    scarcity_evidence_task.apply_async(queue=hot)
                    ran = wait_for(
                        lambda n=rounds: runs(monitor_counters_task) == n and runs(scarcity_evidence_task) == n,
                        30,
                        interval=0.05,
                    )
                    assert ran, (tmp_path / "hot.log").read_text()
                    rounds_while_closing += runs(close_idle_sessions_task) == 0
                    for task in (monitor_counters_task, scarcity_evidence_task):
                        lateness[task.name].append(state(task).last_lateness_seconds)
                    time.sleep(0.5)
                assert runs(close_idle_sessions_task) == 1, (tmp_path / "batch.log").read_text()
                rollups_ran = wait_for(lambda: runs(rollups_update_task) == 1, 30)
    finally:
        celery_app.conf.task_always_eager = True

    close_state = state(close_idle_sessions_task)
    print(f"closing took {close_state.last_duration_seconds:.1f} s; hot runs meanwhile: {rounds_while_closing}")
    print(f"hot lateness (s): {lateness}")
    # then: the hot tasks ran every time they were sent, on time, several times during the closing
    assert rounds_while_closing >= 2
    assert all(0 <= late < ON_TIME_SECONDS for values in lateness.values() for late in values), lateness
    for task in (monitor_counters_task, scarcity_evidence_task):
        hot_state = state(task)
        assert (hot_state.runs, hot_state.failures, hot_state.skipped) == (rounds, 0, 0)
    # the second copy of the closing task returned at once, so the rollups ran beside the closing
    assert (close_state.runs, close_state.failures, close_state.skipped) == (1, 0, 1)
    assert rollups_ran
    assert state(rollups_update_task).last_finished_at < close_state.last_finished_at
    # and the one run closed every session once, as a single run would
    assert open_idle() == 0
    sessions = JourneySession.objects.filter(site=site)
    assert sessions.count() == BACKLOG
    assert sessions.exclude(ended_at=last_activity).count() == 0
    assert sessions.exclude(total_session_time=600).count() == 0
    assert (
        sessions.exclude(
            exit_point={
                "reason": "idle",
                "stage": "consideration",
                "page_url": CHECKOUT_URL,
                "touchpoint_type": "click",
            }
        ).count()
        == 0
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_closing_run_killed_with_its_whole_worker_leaves_no_lock_and_the_next_run_closes_the_rest(site, tmp_path):
    # given: 20,000 idle sessions, and a worker killed with its pool (kill -9) while closing them
    last_activity = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    idle_sessions_insert(site, BACKLOG, last_activity_at=last_activity, session_seconds=600)
    batch = f"batch-test-{uuid.uuid4().hex[:10]}"
    closing = {"SESSION_CLOSE_BATCH_SIZE": "50"}
    celery_app.conf.task_always_eager = False
    try:
        with celery_worker(batch, tmp_path / "killed.log", pool="prefork", env=closing) as worker:
            close_idle_sessions_task.apply_async(queue=batch)
            assert wait_for(lambda: open_idle() < BACKLOG, 60), (tmp_path / "killed.log").read_text()
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        left = open_idle()

        # when: the next beat's message reaches a new worker (the killed one's stays unacknowledged
        # for the visibility timeout, 360 s, and has expired by then)
        with celery_worker(batch, tmp_path / "next.log", pool="prefork", env=closing):
            close_idle_sessions_task.apply_async(queue=batch)
            assert wait_for(lambda: runs(close_idle_sessions_task) == 1, 120), (tmp_path / "next.log").read_text()
    finally:
        celery_app.conf.task_always_eager = True

    # then: the dead worker's lock went with its database session: the next run ran at once
    # (not skipped) and closed the rest, every session once, as one run would have
    assert 0 < left < BACKLOG
    close_state = state(close_idle_sessions_task)
    assert (close_state.runs, close_state.failures, close_state.skipped) == (1, 0, 0)
    assert open_idle() == 0
    sessions = JourneySession.objects.filter(site=site)
    assert sessions.exclude(ended_at=last_activity).count() == 0
    assert sessions.exclude(total_session_time=600).count() == 0
