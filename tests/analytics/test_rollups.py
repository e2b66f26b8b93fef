"""Rollups: incremental runs (real Celery task, eager) always equal a recompute from raw."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from decimal import Decimal

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from analytics.models import (
    PersonalizationDaily,
    RollupDirtyDay,
    ScarcityRuleDaily,
    SessionDaily,
    StageFlowDaily,
    VariantDaily,
)
from analytics.rollups import ROLLUP_LOCK, RollupInterrupted, rollups_update
from analytics.tasks import rollups_update_task
from journeys.models import JourneySession
from personalization.models import ClaimLedger, TriggerType
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from tests.analytics.rollup_helpers import (
    DAY1,
    DAY2,
    DAY3,
    ROLLUP_MODELS,
    advance,
    claim,
    convert,
    engagement_add,
    expose,
    member,
    personalize,
    rollup_rows,
    session,
    world,
)
from tests.journeys.helpers import move, start
from tests.personalization.helpers import staff
from tests.personalization.scarcity_helpers import carrying_variant, live_offer, make_rule

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

MINUTE = timedelta(minutes=1)


def other_connection() -> psycopg.Connection:
    """A second database connection, as another web process or worker would hold."""
    return psycopg.connect(**connection.get_connection_params(), autocommit=True)


def first_wave(site, other_site):
    w = world(site)
    s1 = session(site, "s1", at=DAY1, persona="TechEarlyAdopter", touchpoints=5)
    advance(s1, "consideration")
    advance(s1, "decision")
    expose(s1, w.variant_a, experiment=w.experiment, at=DAY1 + MINUTE)
    member(s1, w.rule, holdout=False, at=DAY1 + 2 * MINUTE)
    claim(s1, w.rule, at=DAY1 + 3 * MINUTE)
    claim(s1, w.rule, at=DAY1 + 4 * MINUTE)
    convert(s1, "49.90", at=DAY1 + 10 * MINUTE)
    record = personalize(
        s1, w.variant_a, strategy="viral_hook_replication", engagement_time=30, confidence=0.85, attributed=True
    )

    s2 = session(
        site,
        "s2",
        at=DAY1 + timedelta(hours=1),
        device="desktop",
        path="desktop_research_deep",
        persona="Researcher",
        returning=True,
        cross_device=True,
        touchpoints=7,
    )
    expose(s2, w.variant_b, experiment=w.experiment, at=DAY1 + timedelta(hours=1, minutes=1))
    member(s2, w.rule, holdout=True, at=DAY1 + timedelta(hours=1, minutes=2))
    personalize(s2, w.variant_b, strategy="comparison_table", engagement_time=12, confidence=0.5)

    s3 = session(site, "s3", at=DAY2, persona="TechEarlyAdopter")
    advance(s3, "consideration")
    expose(s3, w.variant_a, experiment=w.experiment, at=DAY2 + MINUTE)
    convert(s3, "20.00", at=DAY2 + timedelta(seconds=30))
    personalize(s3, None, strategy="swipe_gallery_optimization", engagement_time=10)

    o1 = session(other_site, "o1", at=DAY1, device="tablet", path="standard_conversion_funnel")
    convert(o1, "5.00", at=DAY1 + MINUTE)
    return w, s1, s2, s3, o1, record


def test_incremental_runs_with_an_interrupted_one_equal_the_recompute(site, other_site):
    # Given a first wave of raw rows, rolled up by the beat task
    w, s1, s2, s3, o1, record = first_wave(site, other_site)
    assert rollups_update_task.delay().get() == 3  # (site, day 1), (site, day 2), (other site, day 1)
    first = rollup_rows()
    assert rollups_update_task.delay().get() == 0

    # And later changes: late conversions, stage moves, an engagement update, an erased
    # session, a new day
    convert(s2, "120.00", at=DAY2 - timedelta(hours=1))
    advance(s1, "retention")
    engagement_add(record, 15)
    JourneySession.objects.filter(pk=s3.pk).delete()
    s4 = session(site, "s4", at=DAY3, device="tablet", path="standard_conversion_funnel", touchpoints=2)
    expose(s4, w.variant_b, experiment=w.experiment, at=DAY3 + MINUTE)
    member(s4, w.rule, holdout=False, at=DAY3 + MINUTE)
    claim(s4, w.rule, at=DAY3 + MINUTE)
    convert(s4, "10.00", at=DAY3 + timedelta(days=2))
    convert(o1, "7.50", at=DAY1 + 2 * MINUTE)
    marks = RollupDirtyDay.objects.count()

    # When a run dies inside its transaction after part of its work
    with pytest.raises(RollupInterrupted):
        rollups_update(interrupt_after=StageFlowDaily)

    # Then nothing of it stays: the rollups and the marks are as before
    assert rollup_rows() == first
    assert RollupDirtyDay.objects.count() == marks

    # When the task runs again, twice
    assert rollups_update_task.delay().get() == 4
    assert rollups_update_task.delay().get() == 0
    incremental = rollup_rows()

    # Then every rollup row equals a recompute from raw
    call_command("rollups_recompute")
    assert rollup_rows() == incremental
    assert all(model.objects.exists() for model in ROLLUP_MODELS)

    # And the numbers are the expected ones
    day1, day3 = DAY1.date(), DAY3.date()
    mobile = SessionDaily.objects.get(site=site, day=day1, device_type="mobile")
    assert (mobile.sessions, mobile.touchpoints, mobile.max_retention, mobile.max_decision) == (1, 5, 1, 0)
    assert (mobile.converted_sessions, mobile.conversions, mobile.revenue) == (1, 1, Decimal("49.90"))
    assert (mobile.ttc_seconds_sum, mobile.ttc_count, mobile.ttc_10_to_60_min) == (600, 1, 1)
    desktop = SessionDaily.objects.get(site=site, day=day1, device_type="desktop")
    assert (desktop.persona, desktop.returning_sessions, desktop.cross_device_sessions) == ("Researcher", 1, 1)
    assert (desktop.max_awareness, desktop.converted_sessions, desktop.revenue) == (1, 1, Decimal("120.00"))
    assert (desktop.ttc_seconds_sum, desktop.ttc_count, desktop.ttc_1_to_24_h) == (22 * 3600, 1, 1)
    other = SessionDaily.objects.get(site=other_site)
    assert (other.sessions, other.converted_sessions, other.conversions, other.revenue) == (1, 1, 2, Decimal("12.50"))
    assert not SessionDaily.objects.filter(day=DAY2.date()).exists()
    assert not StageFlowDaily.objects.filter(day=DAY2.date()).exists()
    late = SessionDaily.objects.get(site=site, day=day3)
    assert (late.ttc_over_24_h, late.revenue) == (1, Decimal("10.00"))

    flows = StageFlowDaily.objects.filter(site=site, day=day1, device_type="mobile").order_by("id")
    assert sorted((f.from_stage, f.to_stage, f.transitions) for f in flows) == [
        ("", "awareness", 1),
        ("awareness", "consideration", 1),
        ("consideration", "decision", 1),
        ("decision", "retention", 1),
    ]
    variants = {
        (v.day, v.variant_id): (v.experiment_id, v.exposures, v.conversions, v.revenue)
        for v in VariantDaily.objects.filter(site=site)
    }
    assert variants == {
        (day1, w.variant_a.pk): (w.experiment.pk, 1, 1, Decimal("49.90")),
        (day1, w.variant_b.pk): (w.experiment.pk, 1, 1, Decimal("120.00")),
        (day3, w.variant_b.pk): (w.experiment.pk, 1, 1, Decimal("10.00")),
    }
    cues = {
        (c.day, c.device_type): (
            c.impressions,
            c.sessions_shown,
            c.exposed_sessions,
            c.exposed_conversions,
            c.holdout_sessions,
            c.holdout_conversions,
        )
        for c in ScarcityRuleDaily.objects.all()
    }
    assert cues == {
        (day1, "mobile"): (2, 1, 1, 1, 0, 0),
        (day1, "desktop"): (0, 0, 0, 0, 1, 1),
        (day3, "tablet"): (1, 1, 1, 1, 0, 0),
    }
    delivered = {
        p.strategy: (p.applications, p.engagement_time, p.conversions, p.confidence_sum, p.confidence_count)
        for p in PersonalizationDaily.objects.all()
    }
    assert delivered == {
        "viral_hook_replication": (1, 45, 1, Decimal("0.850000"), 1),
        "comparison_table": (1, 12, 0, Decimal("0.500000"), 1),
    }


def test_a_change_committed_out_of_id_order_is_counted_by_the_next_run(site, other_site):
    # Given rolled-up sessions
    w, s1, s2, *_ = first_wave(site, other_site)
    rollups_update()
    # And a writer that took a conversion id first but commits last
    with other_connection() as writer:
        writer.execute("BEGIN")
        writer.execute(
            "INSERT INTO journeys_conversionevent (site_id, session_id, event_id, type, value, currency, funnel_step,"
            " product, attribution, payload_hash, converted_at)"
            " VALUES (%s, %s, gen_random_uuid(), 'purchase', 80, 'EUR', '', '{}', '{}', 'p', %s)",
            [site.pk, s2.pk, DAY1 + timedelta(hours=2)],
        )
        convert(s1, "1.00", at=DAY1 + timedelta(hours=3))  # a later id, committed first

        # When a run happens while the first writer is still open
        rollups_update()
        desktop = SessionDaily.objects.get(site=site, day=DAY1.date(), device_type="desktop")
        assert (desktop.converted_sessions, desktop.revenue) == (0, Decimal("0.00"))
        assert SessionDaily.objects.get(site=site, day=DAY1.date(), device_type="mobile").conversions == 2
        writer.execute("COMMIT")

    # Then the next run counts the late commit
    assert rollups_update().keys == 1
    desktop = SessionDaily.objects.get(site=site, day=DAY1.date(), device_type="desktop")
    assert (desktop.converted_sessions, desktop.revenue) == (1, Decimal("80.00"))
    incremental = rollup_rows()
    call_command("rollups_recompute")
    assert rollup_rows() == incremental


def test_a_run_while_another_holds_the_lock_does_nothing(site, other_site):
    first_wave(site, other_site)
    marks = RollupDirtyDay.objects.count()
    with other_connection() as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ROLLUP_LOCK])
        result = rollups_update()
        other.execute("SELECT pg_advisory_unlock(%s)", [ROLLUP_LOCK])
    assert result.ran is False
    assert RollupDirtyDay.objects.count() == marks
    assert not SessionDaily.objects.exists()
    assert rollups_update().keys == 3
    assert RollupDirtyDay.objects.count() == 0


def test_recompute_of_a_site_and_range_touches_only_those_keys(site, other_site):
    first_wave(site, other_site)
    rollups_update()
    # Rollups tampered with, to see which keys the command rebuilds
    SessionDaily.objects.update(sessions=99)
    call_command("rollups_recompute", "--site", str(site.pk), "--date-from", "2026-11-10", "--date-to", "2026-11-10")
    assert sorted(SessionDaily.objects.values_list("site_id", "day", "sessions")) == sorted(
        [
            (site.pk, date(2026, 11, 10), 1),
            (site.pk, date(2026, 11, 10), 1),
            (site.pk, date(2026, 11, 11), 99),
            (other_site.pk, date(2026, 11, 10), 99),
        ]
    )


def test_decisions_and_stage_moves_mark_their_key_once_and_roll_up_exactly(site, api, django_user_model):
    # Given a live offer banner with a true low-stock cue, and two sessions started through the API
    people = (staff(django_user_model, "marketer", "Marketers"), staff(django_user_model, "approver", "Approvers"))
    now = timezone.now()
    offer = live_offer(site, people, stock=3, stock_at=now)
    carrying_variant(site, offer, people)
    rule = make_rule(site, offer, TriggerType.LOW_STOCK, people, threshold=5)
    scarcity_evidence_refresh(site_id=site.pk, now=now)
    for session_id in ("s-a", "s-b"):
        assert start(api, session_id, slots=[], consent={"personalization": True}).status_code == 201
    assert rollups_update_task.delay().get() == 1
    day = JourneySession.objects.get(session_id="s-a").started_at.astimezone(UTC).date()

    # When one decides (a variant shown, a cue claimed) and the other moves a stage (a cue claimed)
    decided = api.post("/api/v1/decide", {"session_id": "s-a", "slots": ["offer_banner"]}, format="json")
    after_decision = list(RollupDirtyDay.objects.values_list("site_id", "day"))
    moved = move(api, "s-b", "decision")
    after_move = list(RollupDirtyDay.objects.values_list("site_id", "day"))

    # Then each statement marked its session's key once: not once per table it wrote
    assert [cue["message"] for cue in decided.json()["scarcity"]] == ["Only 3 left"]
    assert [cue["message"] for cue in moved.json()["scarcity_triggers"]] == ["Only 3 left"]
    assert after_decision == [(site.pk, day)]
    assert after_move == [(site.pk, day), (site.pk, day), (site.pk, day)]  # the move, then its decision's claim

    # And the next run rolls up exactly what the recompute from raw gives
    assert rollups_update_task.delay().get() == 1
    incremental = rollup_rows()
    call_command("rollups_recompute")
    assert rollup_rows() == incremental
    shown = ScarcityRuleDaily.objects.get(site=site, day=day, rule=rule, device_type="mobile")
    # each session was shown the cue at its start (awareness) and again now
    assert ClaimLedger.objects.filter(rule=rule).count() == 4
    assert (shown.impressions, shown.sessions_shown, shown.exposed_sessions, shown.holdout_sessions) == (4, 2, 2, 0)
    exposed = VariantDaily.objects.get(site=site, day=day)
    assert (exposed.exposures, exposed.conversions) == (1, 0)
    flows = StageFlowDaily.objects.filter(site=site, day=day, to_stage="decision")
    assert [(f.from_stage, f.transitions) for f in flows] == [("awareness", 1)]
