"""The scarcity-sensitivity learner under two concurrent runs: each session moves its visitor one step."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from journeys.models import ConversionEvent, Visitor
from personalization.models import ClaimLedger, TriggerType
from personalization.services.scarcity.sensitivity import scarcity_sensitivity_learn
from tests.journeys.helpers import JourneySessionFactory, VisitorFactory
from tests.personalization.scarcity_helpers import live_offer, make_rule

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

VISITORS = 40


@pytest.fixture
def shown_cues(site, people):
    """Forty consenting visitors with one ended session each, shown a low-stock cue an
    hour ago; the even ones bought after it."""
    rule = make_rule(site, live_offer(site, people, stock=3), TriggerType.LOW_STOCK, people)
    now = timezone.now()
    for index in range(VISITORS):
        visitor = VisitorFactory(site=site, visitor_id=f"v-{index:02}", consent_personalization=True)
        session = JourneySessionFactory(site=site, visitor=visitor, session_id=f"s-{index:02}", ended_at=now)
        ClaimLedger.objects.create(
            session=session,
            rule=rule,
            rule_version=1,
            trigger_type=TriggerType.LOW_STOCK,
            text="Only 3 left",
            evidence_measured_at=now - timedelta(hours=1),
            shown_at=now - timedelta(hours=1),
        )
        if index % 2 == 0:
            ConversionEvent.objects.create(
                site=site,
                session=session,
                event_id=uuid.uuid4(),
                type="purchase",
                value="50.00",
                payload_hash="0" * 32,
                converted_at=now - timedelta(minutes=30),
            )
    return now


def test_two_concurrent_runs_move_every_visitor_exactly_one_step(shown_cues):
    # Given two learner runs, each on its own thread and connection, released together
    barrier = threading.Barrier(2)
    scored: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            scored.append(scarcity_sensitivity_learn(now=shown_cues))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]

    # When they run at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then every session was scored once, and moved its visitor one step: 0.5 -> 0.6 after
    # a purchase, 0.5 -> 0.4 without (two steps would give 0.68 and 0.32)
    assert errors == []
    assert sum(scored) == VISITORS
    learned = dict(Visitor.objects.values_list("visitor_id", "scarcity_sensitivity"))
    assert learned == {
        f"v-{index:02}": pytest.approx(0.6 if index % 2 == 0 else 0.4, abs=1e-12) for index in range(VISITORS)
    }
    assert ClaimLedger.objects.filter(scored_at=shown_cues).count() == VISITORS
    assert scarcity_sensitivity_learn(now=shown_cues) == 0


def test_a_visitor_claimed_by_a_running_learner_is_skipped_not_waited_for(shown_cues):
    # Given a run that holds the first visitor, on another connection
    held, release = threading.Event(), threading.Event()

    def other_run() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                Visitor.objects.select_for_update(no_key=True).get(visitor_id="v-00")
                held.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=other_run)
    thread.start()
    try:
        assert held.wait(30)

        # When this run learns
        scored = scarcity_sensitivity_learn(now=shown_cues)
    finally:
        release.set()
        thread.join(timeout=60)

    # Then it scored the other 39 visitors at once, and left the held one for later
    assert scored == VISITORS - 1
    assert Visitor.objects.get(visitor_id="v-00").scarcity_sensitivity == 0.5
    assert ClaimLedger.objects.filter(scored_at__isnull=True).count() == 1
    assert scarcity_sensitivity_learn(now=shown_cues) == 1
    assert Visitor.objects.get(visitor_id="v-00").scarcity_sensitivity == pytest.approx(0.6, abs=1e-12)
