"""The periodic-task contract (core/tasks.py): one run at a time per task, counted; two
queues with their routes and beat entries; a broker visibility timeout derived from the
hard time limit."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from analytics.tasks import monitor_counters_task, rollups_update_task, touchpoints_purge_task
from config.celery import app as celery_app
from core.models import PeriodicTaskState
from core.tasks import LOCK_NAMESPACE, lock_id, single_instance, task_key
from journeys.models import JourneySession
from journeys.tasks import close_idle_sessions_task
from personalization.tasks import optimize_experiments_task, scarcity_evidence_task
from tests.journeys.helpers import JourneySessionFactory
from tests.platform.test_settings import PRODUCTION, run_python
from tests.processes import database_url_of_the_test_database

CLOSE_TASK = "journeys.tasks.close_idle_sessions_task"


@pytest.fixture
def other_session():
    """A second database session, as a run of the task in another worker would hold."""
    with psycopg.connect(database_url_of_the_test_database(), autocommit=True) as other:
        yield other


def hold_lock(other, key: str) -> None:
    assert other.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, lock_id(key)]).fetchone()[0]


def idle_session(site, session_id: str):
    now = timezone.now()
    return JourneySessionFactory(
        site=site, session_id=session_id, started_at=now - timedelta(hours=3), last_activity_at=now - timedelta(hours=2)
    )


@pytest.mark.django_db
def test_a_copy_that_finds_the_lock_taken_returns_at_once_changes_nothing_and_is_counted(site, other_session):
    session = idle_session(site, "s-idle")
    hold_lock(other_session, CLOSE_TASK)

    assert close_idle_sessions_task.delay().get() is None

    session.refresh_from_db()
    assert session.ended_at is None
    state = PeriodicTaskState.objects.get(key=CLOSE_TASK)
    assert (state.runs, state.failures, state.skipped, state.last_started_at) == (0, 0, 1, None)
    assert state.last_skipped_at is not None


@pytest.mark.django_db
def test_once_the_lock_is_free_the_next_copy_runs_and_its_run_is_recorded(site, other_session):
    session = idle_session(site, "s-idle")
    hold_lock(other_session, CLOSE_TASK)
    assert close_idle_sessions_task.delay().get() is None
    other_session.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, lock_id(CLOSE_TASK)])

    assert close_idle_sessions_task.delay().get() == 1

    session.refresh_from_db()
    assert session.ended_at == session.last_activity_at
    state = PeriodicTaskState.objects.get(key=CLOSE_TASK)
    assert (state.runs, state.failures, state.skipped) == (1, 0, 1)
    assert state.last_started_at <= state.last_finished_at
    assert state.last_duration_seconds >= 0
    assert state.last_lateness_seconds is None  # run eagerly: no message was sent
    # released: this test's session can take it (another session could too)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db
def test_the_lock_is_per_task_and_arguments(site, other_session):
    hold_lock(other_session, task_key("personalization.tasks.optimize_experiments_task", (), {"site_id": site.pk}))

    assert optimize_experiments_task.delay(site_id=site.pk).get() is None
    assert optimize_experiments_task.delay().get() == 0  # all sites: another key
    assert rollups_update_task.delay().get() == 0  # another task (no session: no key to recompute)

    assert dict(PeriodicTaskState.objects.values_list("key", "skipped")) == {
        f'personalization.tasks.optimize_experiments_task [[], {{"site_id": {site.pk}}}]': 1,
        "personalization.tasks.optimize_experiments_task": 0,
        "analytics.tasks.rollups_update_task": 0,
    }


@pytest.mark.django_db
def test_a_failing_run_is_counted_releases_its_lock_and_raises(site, monkeypatch):
    def broken(**kwargs):
        raise ValueError("broken purge")

    monkeypatch.setattr("analytics.tasks.touchpoints_purge", broken)

    with pytest.raises(ValueError, match="broken purge"):
        touchpoints_purge_task.delay()

    state = PeriodicTaskState.objects.get(key="analytics.tasks.touchpoints_purge_task")
    assert (state.runs, state.failures, state.skipped) == (1, 1, 0)
    with single_instance("analytics.tasks.touchpoints_purge_task") as acquired:
        assert acquired is True


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_closing_runs_one_closes_every_session_the_other_returns_at_once(site, monkeypatch):
    # given: 30 idle sessions, committed; the first run pauses after its first batch of 10
    for index in range(30):
        idle_session(site, f"s-{index}")
    first_batch_done, go_on = threading.Event(), threading.Event()

    from journeys.services import sessions

    def paused_close(**kwargs):
        def after_batch(closed, seconds):
            if not first_batch_done.is_set():
                first_batch_done.set()
                assert go_on.wait(30)

        return sessions.sessions_close_idle(**{**kwargs, "batch_size": 10, "on_batch": after_batch})

    monkeypatch.setattr("journeys.tasks.sessions_close_idle", paused_close)
    results = {}

    def run(name):
        try:
            results[name] = close_idle_sessions_task.apply().get()
        finally:
            connection.close()

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert first_batch_done.wait(30)

    # when: a second copy starts while the first holds the lock mid-work
    second = threading.Thread(target=run, args=("second",))
    second.start()
    second.join(30)
    go_on.set()
    first.join(30)

    # then: the second returned at once without closing anything; the first closed all 30, once
    assert results == {"second": None, "first": 30}
    assert JourneySession.objects.filter(ended_at=None).count() == 0
    state = PeriodicTaskState.objects.get(key=CLOSE_TASK)
    assert (state.runs, state.failures, state.skipped) == (1, 0, 1)


def test_hot_tasks_go_to_the_hot_queue_and_everything_else_to_the_batch_queue():
    hot, batch = settings.QUEUE_HOT, settings.QUEUE_BATCH
    assert (hot, batch) == ("hot", "batch")
    routes = {
        name: celery_app.amqp.router.route({}, name)["queue"].name
        for name in [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    }
    assert routes == {
        "analytics.tasks.monitor_counters_task": hot,
        "personalization.tasks.scarcity_evidence_task": hot,
        "journeys.tasks.close_idle_sessions_task": batch,
        "personalization.tasks.optimize_experiments_task": batch,
        "personalization.tasks.scarcity_monitor_task": batch,
        "personalization.tasks.scarcity_sensitivity_task": batch,
        "analytics.tasks.rollups_update_task": batch,
        "analytics.tasks.touchpoints_purge_task": batch,
        "analytics.tasks.train_conversion_models_task": batch,
    }
    assert {entry["task"]: entry["options"]["queue"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} == routes


def test_the_visibility_timeout_is_a_minute_above_the_hard_limit_which_no_task_exceeds():
    assert settings.CELERY_TASK_TIME_LIMIT == 300
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] == 360
    periodic = [celery_app.tasks[entry["task"]] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    limits = {task.name: (task.soft_time_limit, task.time_limit) for task in periodic}
    shorter = {monitor_counters_task.name: (25, 30), scarcity_evidence_task.name: (50, 60)}
    assert limits == {task.name: shorter.get(task.name, (240, 300)) for task in periodic}
    assert max(hard for _, hard in limits.values()) < settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert all(task.acks_late and task.reject_on_worker_lost for task in periodic)


def test_the_visibility_timeout_follows_a_changed_hard_limit_and_the_queue_names_their_variables():
    code = (
        "import json; from django.conf import settings as s; print(json.dumps([s.CELERY_BROKER_TRANSPORT_OPTIONS, "
        "s.CELERY_TASK_DEFAULT_QUEUE, s.CELERY_TASK_ROUTES, s.CELERY_BEAT_SCHEDULE['close-idle-sessions']]))"
    )
    env = {**PRODUCTION, "CELERY_TASK_TIME_LIMIT": "900", "QUEUE_HOT": "je-hot", "QUEUE_BATCH": "je-batch"}

    result = run_python(code, env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"visibility_timeout": 960, "unacked_restore_interval": 10, "unacked_restore_throttle": 1},
        "je-batch",
        {
            "analytics.tasks.monitor_counters_task": {"queue": "je-hot"},
            "personalization.tasks.scarcity_evidence_task": {"queue": "je-hot"},
        },
        {"task": "journeys.tasks.close_idle_sessions_task", "schedule": 60.0, "options": {"queue": "je-batch"}},
    ]
