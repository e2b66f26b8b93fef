"""Closing idle sessions: the service, the Celery task run eagerly, and the task on a real worker."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from devtools.idle_backlog import idle_sessions_insert
from journeys.models import JourneySession
from journeys.services.sessions import sessions_close_idle
from journeys.tasks import close_idle_sessions_task
from tests.journeys.helpers import JourneySessionFactory, TouchpointFactory
from tests.processes import celery_worker, wait_for

IDLE_MINUTES = 30


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def idle_with_touchpoints(site, now):
    """Started 3 h ago, last active 2 h ago in consideration, last touchpoint a click on the checkout page."""
    session = JourneySessionFactory(
        site=site,
        session_id="s-idle",
        started_at=now - timedelta(hours=3),
        last_activity_at=now - timedelta(hours=2),
        current_stage="consideration",
    )
    TouchpointFactory(session=session, sequence=1, type="page_view", page_url="https://shop.example/p/1")
    TouchpointFactory(session=session, sequence=2, type="click", page_url="https://shop.example/checkout")
    return session


def state(session_id):
    return JourneySession.objects.values().get(session_id=session_id)


@pytest.mark.django_db
def test_only_sessions_idle_longer_than_the_limit_are_closed(site, now, idle_with_touchpoints):
    JourneySessionFactory(
        site=site,
        session_id="s-quiet",
        started_at=now - timedelta(hours=2),
        last_activity_at=now - timedelta(minutes=90),
    )
    JourneySessionFactory(site=site, session_id="s-active", last_activity_at=now - timedelta(minutes=10))
    JourneySessionFactory(site=site, session_id="s-edge", last_activity_at=now - timedelta(minutes=IDLE_MINUTES))
    untouched = {session_id: state(session_id) for session_id in ("s-active", "s-edge")}

    closed = sessions_close_idle(now=now, idle_minutes=IDLE_MINUTES)

    assert closed == 2
    idle = JourneySession.objects.get(session_id="s-idle")
    assert idle.ended_at == now - timedelta(hours=2)
    assert idle.ended_at == idle.last_activity_at
    assert idle.total_session_time == 3600
    assert idle.exit_point == {
        "reason": "idle",
        "stage": "consideration",
        "page_url": "https://shop.example/checkout",
        "touchpoint_type": "click",
    }
    quiet = JourneySession.objects.get(session_id="s-quiet")
    assert (quiet.ended_at, quiet.total_session_time) == (now - timedelta(minutes=90), 1800)
    assert quiet.exit_point == {"reason": "idle", "stage": "awareness", "page_url": "", "touchpoint_type": ""}
    assert {session_id: state(session_id) for session_id in untouched} == untouched


@pytest.mark.django_db
def test_closing_twice_changes_nothing_the_second_time(site, now, idle_with_touchpoints):
    sessions_close_idle(now=now, idle_minutes=IDLE_MINUTES)
    after_first = list(JourneySession.objects.order_by("pk").values())

    closed = sessions_close_idle(now=now + timedelta(hours=1), idle_minutes=IDLE_MINUTES)

    assert closed == 0
    assert list(JourneySession.objects.order_by("pk").values()) == after_first


@pytest.mark.django_db
def test_a_closed_session_is_not_closed_again(site, now):
    ended = now - timedelta(hours=5)
    JourneySessionFactory(
        site=site,
        session_id="s-done",
        started_at=now - timedelta(hours=6),
        last_activity_at=ended,
        ended_at=ended,
        total_session_time=42,
        exit_point={"reason": "manual"},
    )
    before = state("s-done")

    closed = sessions_close_idle(now=now, idle_minutes=IDLE_MINUTES)

    assert closed == 0
    assert state("s-done") == before


@pytest.mark.django_db
def test_small_batches_close_every_idle_session(site, now):
    for index in range(5):
        JourneySessionFactory(
            site=site, session_id=f"s-{index}", last_activity_at=now - timedelta(hours=1, minutes=index)
        )

    closed = sessions_close_idle(now=now, idle_minutes=IDLE_MINUTES, batch_size=2)

    assert closed == 5
    assert JourneySession.objects.filter(ended_at=None).count() == 0


@pytest.mark.django_db
def test_celery_task_closes_idle_sessions_when_run_eagerly(site, idle_with_touchpoints):
    JourneySessionFactory(site=site, session_id="s-active", last_activity_at=timezone.now())

    result = close_idle_sessions_task.delay()

    assert result.get() == 1
    assert dict(JourneySession.objects.values_list("session_id", "ended_at")) == {
        "s-idle": idle_with_touchpoints.last_activity_at,
        "s-active": None,
    }


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_real_worker_closes_idle_sessions_from_the_broker(site, tmp_path):
    # given: an idle and an active session, committed so the worker process sees them
    now = timezone.now()
    idle = JourneySessionFactory(
        site=site, session_id="s-idle", started_at=now - timedelta(hours=3), last_activity_at=now - timedelta(hours=2)
    )
    JourneySessionFactory(site=site, session_id="s-active", last_activity_at=now)
    queue = f"journeys-test-{uuid.uuid4().hex[:12]}"
    with celery_worker(queue, tmp_path / "worker.log"):
        # when: the task goes through the real broker
        celery_app.conf.task_always_eager = False
        try:
            close_idle_sessions_task.apply_async(queue=queue)

            # then: the worker closed the idle session and only that one
            closed = wait_for(lambda: JourneySession.objects.filter(pk=idle.pk, ended_at__isnull=False).exists(), 60)
            assert closed, (tmp_path / "worker.log").read_text()
        finally:
            celery_app.conf.task_always_eager = True
    assert dict(JourneySession.objects.values_list("session_id", "ended_at")) == {
        "s-idle": idle.last_activity_at,
        "s-active": None,
    }
    assert JourneySession.objects.get(pk=idle.pk).total_session_time == 3600


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_runs_of_the_service_close_disjoint_sessions_each_once(site):
    # given: 3,000 idle sessions, committed
    last_activity = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    idle_sessions_insert(site, 3000, last_activity_at=last_activity, session_seconds=600, touchpoints=1)
    start = threading.Barrier(2)
    closed: dict[str, int] = {}

    def run(name):
        try:
            start.wait(10)
            closed[name] = sessions_close_idle(idle_minutes=IDLE_MINUTES, batch_size=100)
        finally:
            connection.close()

    # when: two runs (without the task's lock) close them at the same time, in batches of 100
    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # then: between them they closed every session exactly once (SKIP LOCKED: disjoint batches)
    assert closed["a"] + closed["b"] == 3000
    assert JourneySession.objects.filter(ended_at=None).count() == 0
    assert JourneySession.objects.exclude(ended_at=last_activity).count() == 0
    assert JourneySession.objects.exclude(total_session_time=600).count() == 0
