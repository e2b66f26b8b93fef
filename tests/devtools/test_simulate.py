"""The simulator: a pure plan with a documented truth, sent through the real HTTP API."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from devtools import simulation
from devtools.simulation import default_anchor, plan_visitors, true_probability
from journeys.models import (
    ConversionEvent,
    CrossDeviceLink,
    IdempotencyConflict,
    JourneySession,
    QuarantinedEvent,
    StageTransition,
    Touchpoint,
    Visitor,
)
from journeys.services.sites import site_create

ANCHOR = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def sessions_of(plans):
    return [session for visitor in plans for session in visitor.sessions]


# The pure model -------------------------------------------------------------------


def test_same_seed_plans_the_same_visitors():
    first = plan_visitors(seed=5, visitors=30, anchor=ANCHOR)
    second = plan_visitors(seed=5, visitors=30, anchor=ANCHOR)

    assert first == second


def test_another_seed_plans_other_visitors():
    first = {e["event_id"] for s in sessions_of(plan_visitors(seed=5, visitors=10, anchor=ANCHOR)) for e in s.events}
    other = {e["event_id"] for s in sessions_of(plan_visitors(seed=6, visitors=10, anchor=ANCHOR)) for e in s.events}

    assert first.isdisjoint(other)


def test_a_visitor_does_not_depend_on_how_many_are_simulated():
    assert plan_visitors(seed=5, visitors=40, anchor=ANCHOR)[:10] == plan_visitors(seed=5, visitors=10, anchor=ANCHOR)


def test_client_ids_are_unique_and_event_ids_are_uuid4():
    sessions = sessions_of(plan_visitors(seed=5, visitors=200, anchor=ANCHOR))
    event_ids = [event["event_id"] for session in sessions for event in session.events]
    conversion_ids = [c["event_id"] for s in sessions for stage in s.stages for c in stage.conversions]

    assert len({s.session_id for s in sessions}) == len(sessions)
    assert len(set(event_ids + conversion_ids)) == len(event_ids) + len(conversion_ids)
    assert {uuid.UUID(event_id).version for event_id in event_ids} == {4}


def test_true_probability_gives_the_documented_examples():
    first_visit = true_probability(
        device="mobile", source="tiktok", returning=False, persona="StudentHustler", engagement=0.4
    )
    comes_back = true_probability(
        device="desktop", source="email", returning=True, persona="StudentHustler", engagement=0.8
    )

    assert round(first_visit, 4) == 0.0241
    assert round(comes_back, 4) == 0.4134


def test_the_documented_expected_conversion_rate_is_what_the_model_gives():
    rate = simulation.expected_conversion_rate(visitors=50_000, seed=1)

    assert abs(rate - simulation.EXPECTED_CONVERSION_RATE) < 0.003


def test_the_planned_sessions_average_the_documented_rate():
    sessions = sessions_of(plan_visitors(seed=2, visitors=3000, anchor=ANCHOR))
    mean = sum(s.truth.true_probability for s in sessions) / len(sessions)

    assert abs(mean - simulation.EXPECTED_CONVERSION_RATE) < 0.01
    for session in sessions:
        truth = session.truth
        expected = true_probability(
            device=truth.device,
            source=truth.source,
            returning=truth.returning,
            persona=truth.persona,
            engagement=truth.engagement,
        )
        assert truth.true_probability == round(expected, 6)


def test_purchasers_walk_the_whole_funnel_and_others_stop_on_the_way():
    sessions = sessions_of(plan_visitors(seed=3, visitors=300, anchor=ANCHOR))
    purchasers = [s for s in sessions if s.truth.purchased]
    others = [s for s in sessions if not s.truth.purchased]

    assert purchasers and others
    for session in purchasers:
        assert [stage.stage for stage in session.stages] == ["awareness", "consideration", "decision", "conversion"]
        decision = session.stages[2]
        assert [c["type"] for c in decision.conversions] == ["purchase"]
        assert decision.conversions[0]["value"] == session.truth.purchase_value
    for session in others:
        assert session.stages[-1].stage == session.truth.reached_stage != "conversion"
        assert all(c["type"] == "email_signup" for stage in session.stages for c in stage.conversions)


def test_returning_and_second_device_sessions_follow_their_visitor():
    plans = plan_visitors(seed=13, visitors=20, anchor=ANCHOR)

    for visitor in plans:
        first, *later = visitor.sessions
        assert first.truth.returning is False
        for session in later:
            assert session.truth.persona == first.truth.persona
            if session.truth.second_device:
                assert session.truth.visitor_id == f"{first.truth.visitor_id}-d2"
                assert session.truth.device != first.truth.device
                assert session.start["consent"]["cross_device"] is True
                assert session.identify["identifier"] == first.identify["identifier"]
            else:
                assert session.truth.returning is True
                assert session.start["visitor_id"] == first.start["visitor_id"]
    assert sum(s.truth.second_device for s in sessions_of(plans)) == 3


def test_client_timestamps_lie_in_the_three_hours_after_the_anchor():
    sessions = sessions_of(plan_visitors(seed=4, visitors=300, anchor=ANCHOR))
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for s in sessions for e in s.events]

    assert min(stamps) > ANCHOR
    assert max(stamps) < ANCHOR + timedelta(hours=3)


# Against the running API ----------------------------------------------------------


# Traffic sent to the API is recent: client timestamps are accepted only within
# CLIENT_TIMESTAMP_PAST_DAYS. One anchor for the module, so a rerun sends the same events.
LIVE_ANCHOR = default_anchor(datetime.now(UTC))


def run_simulate(live_server, site, tmp_path, *, seed=13, visitors=20, name="truth.jsonl"):
    out = StringIO()
    truth_file = tmp_path / name
    call_command(
        "simulate",
        site_key=site.public_key,
        visitors=visitors,
        seed=seed,
        base_url=live_server.url,
        concurrency=4,
        truth_file=str(truth_file),
        anchor=LIVE_ANCHOR.isoformat(),
        stdout=out,
    )
    truth = [json.loads(line) for line in truth_file.read_text().splitlines()]
    return out.getvalue(), truth


def reported(output: str, pattern: str) -> tuple[int, ...]:
    match = re.search(pattern, output)
    assert match, f"{pattern!r} not in:\n{output}"
    return tuple(int(group) for group in match.groups())


@pytest.fixture
def sim_site(transactional_db):
    return site_create(name="Sim", domain="sim.example")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simulated_sessions_are_stored_as_the_api_answered(live_server, sim_site, tmp_path):
    output, truth = run_simulate(live_server, sim_site, tmp_path)

    sessions, new, existing = reported(output, r"sessions: (\d+) \((\d+) new, (\d+) existing\)")
    sent, accepted, duplicates, conflicts = reported(
        output, r"events: (\d+) sent, (\d+) accepted, (\d+) duplicates, (\d+) conflicts"
    )
    assert (sessions, new, existing) == (len(truth), len(truth), 0)
    assert JourneySession.objects.filter(site=sim_site).count() == sessions
    assert (sent, accepted, duplicates, conflicts) == (sum(t["events"] for t in truth),) * 2 + (0, 0)
    assert Touchpoint.objects.filter(site=sim_site).count() == accepted
    assert QuarantinedEvent.objects.count() == 0

    stored = {s.session_id: s for s in JourneySession.objects.filter(site=sim_site).select_related("visitor")}
    for t in truth:
        session = stored[t["session_id"]]
        assert session.visitor.visitor_id == t["visitor_id"]
        assert session.total_touchpoints == t["events"] == session.touchpoints.count()
        assert sorted(session.touchpoints.values_list("sequence", flat=True)) == list(range(1, t["events"] + 1))
        assert (session.device_type, session.source, session.returning) == (t["device"], t["source"], t["returning"])
        assert session.journey_path == t["journey_path"]
        assert session.current_stage == session.max_stage == t["reached_stage"]
        # session start, each stage update, and the move to conversion a purchase makes
        assert session.transitions.count() == 1 + t["stage_updates"] + t["purchased"]
        if t["persona_sent"]:
            assert (session.persona_type, session.persona_source) == (t["persona"], "client")

    purchases = ConversionEvent.objects.filter(site=sim_site, type="purchase")
    assert sorted(purchases.values_list("session__session_id", "value")) == sorted(
        (t["session_id"], Decimal(t["purchase_value"])) for t in truth if t["purchased"]
    )
    signups = ConversionEvent.objects.filter(site=sim_site, type="email_signup")
    assert sorted(signups.values_list("session__session_id", flat=True)) == sorted(
        t["session_id"] for t in truth if t["email_signup"]
    )
    purchased = sum(t["purchased"] for t in truth)
    assert purchased > 0
    assert reported(output, r"conversions: (\d+) purchases \((\d+) new\)") == (purchased, purchased)

    second_devices = [t for t in truth if t["second_device"]]
    assert len(second_devices) == 3
    links = CrossDeviceLink.objects.filter(site=sim_site)
    assert links.count() == 3
    for t in second_devices:
        link = stored[t["session_id"]].cross_device_link
        assert link is not None
        first = stored[f"sim-13-{t['visitor_index']}-1"]
        assert first.cross_device_link_id == link.pk
        assert link.device_sequence == [first.device_type, t["device"]]

    returning = [t for t in truth if t["returning"]]
    assert returning
    for t in returning:
        assert Visitor.objects.get(site=sim_site, visitor_id=t["visitor_id"]).session_count >= t["session_number"]

    rate = re.search(r"purchase rate: observed ([\d.]+) \((\d+)/(\d+)\), mean true probability ([\d.]+)", output)
    assert rate and (int(rate[2]), int(rate[3])) == (purchased, len(truth))
    assert float(rate[4]) == pytest.approx(sum(t["true_probability"] for t in truth) / len(truth), abs=0.0005)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_rerunning_the_same_seed_writes_nothing_new(live_server, sim_site, tmp_path):
    run_simulate(live_server, sim_site, tmp_path)
    before = {
        "sessions": JourneySession.objects.count(),
        "touchpoints": Touchpoint.objects.count(),
        "transitions": StageTransition.objects.count(),
        "conversions": ConversionEvent.objects.count(),
        "links": CrossDeviceLink.objects.count(),
    }

    output, truth = run_simulate(live_server, sim_site, tmp_path, name="again.jsonl")

    assert reported(output, r"sessions: (\d+) \((\d+) new, (\d+) existing\)") == (len(truth), 0, len(truth))
    events = sum(t["events"] for t in truth)
    assert reported(output, r"events: (\d+) sent, (\d+) accepted, (\d+) duplicates, (\d+) conflicts") == (
        events,
        0,
        events,
        0,
    )
    conversions = sum(t["purchased"] + t["email_signup"] for t in truth)
    assert reported(output, r"; (\d+) duplicates") == (conversions,)
    assert reported(output, r"stage updates: (\d+)") == (0,)
    after = {
        "sessions": JourneySession.objects.count(),
        "touchpoints": Touchpoint.objects.count(),
        "transitions": StageTransition.objects.count(),
        "conversions": ConversionEvent.objects.count(),
        "links": CrossDeviceLink.objects.count(),
    }
    assert after == before
    assert IdempotencyConflict.objects.count() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_api_error_fails_the_command_loudly(live_server, sim_site, tmp_path):
    with pytest.raises(CommandError, match=r"answered 401"):
        call_command(
            "simulate",
            site_key="pk_not-a-key",
            visitors=3,
            seed=1,
            base_url=live_server.url,
            anchor=ANCHOR.isoformat(),
            stdout=StringIO(),
        )

    assert JourneySession.objects.count() == 0
    assert Touchpoint.objects.count() == 0
