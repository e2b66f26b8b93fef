"""The decision engine: sticky deterministic assignment, weights, consent, targeting, records."""

import subprocess
import sys

import pytest
from django.db import connection

from journeys.models import Visitor
from personalization.decisions import arm_for_bucket, bucket
from personalization.models import (
    Allocation,
    Assignment,
    ContentVariant,
    Experiment,
    ExperimentArm,
    Exposure,
    PersonalizationRecord,
    Slot,
)
from personalization.selectors import ArmConfig, ExperimentConfig
from tests.journeys.helpers import start
from tests.personalization.helpers import approved


@pytest.fixture
def hero(site, people, django_capture_on_commit_callbacks):
    slot = Slot.objects.create(site=site, key="hero", name="Hero")
    variants = {}
    for key, extra in [
        ("hero-default", {"is_default": True}),
        ("hero-viral", {"strategy": "viral_hook_replication", "target_devices": ["mobile"]}),
        ("hero-research", {"strategy": "research_overview", "target_paths": ["desktop_research_deep"]}),
    ]:
        variant = ContentVariant.objects.create(
            site=site, slot=slot, key=key, name=key, payload={"headline": key}, **extra
        )
        with django_capture_on_commit_callbacks(execute=True):
            variants[key] = approved(variant, people)
    return slot, variants


def consent_body(personalization=True):
    return {"consent": {"personalization": personalization}}


def decide(api, session_id, slots=("hero",)):
    response = api.post("/api/v1/decide", {"session_id": session_id, "slots": list(slots)}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def test_targeting_and_strategy_choose_the_variant(api, hero):
    start(api, "s-mob", device="mobile", source="tiktok", **consent_body())
    start(api, "s-desk", device="desktop", source="google", **consent_body())
    start(api, "s-tab", device="tablet", source="email", **consent_body())

    assert decide(api, "s-mob")["slots"]["hero"]["variant"] == "hero-viral"
    assert decide(api, "s-desk")["slots"]["hero"]["variant"] == "hero-research"
    tablet = decide(api, "s-tab")["slots"]["hero"]
    assert (tablet["variant"], tablet["reason"]) == ("hero-default", "default")


def test_without_consent_the_default_is_shown_and_no_targeting_is_used(api, hero):
    start(api, "s-mob", device="mobile", source="tiktok", **consent_body(False))
    slot = decide(api, "s-mob")["slots"]["hero"]
    assert (slot["variant"], slot["reason"], slot["strategy"]) == ("hero-default", "no_consent", "default")


def test_decisions_record_one_exposure_and_one_record_per_session_and_variant(api, hero):
    start(api, "s-mob", device="mobile", source="tiktok", **consent_body())
    decide(api, "s-mob")
    decide(api, "s-mob")
    assert list(Exposure.objects.values_list("session__session_id", "variant__key", "variant_version")) == [
        ("s-mob", "hero-viral", 1)
    ]
    assert PersonalizationRecord.objects.count() == 1


def test_unknown_slot_is_refused_naming_it(api, hero):
    start(api, "s-mob", device="mobile", source="tiktok", slots=[], **consent_body())
    response = api.post("/api/v1/decide", {"session_id": "s-mob", "slots": ["hero", "nope"]}, format="json")
    assert response.status_code == 400
    assert response.json() == {"slots": ["Unknown slot: nope."]}
    assert Exposure.objects.count() == 0


def test_session_start_decides_all_slots_and_reports_unknown_ones(api, hero):
    response = start(api, "s-mob", device="mobile", source="tiktok", slots=["hero", "nope"], **consent_body())
    assert response.status_code == 201
    decision = response.json()["decision"]
    assert decision["slots"]["hero"]["variant"] == "hero-viral"
    assert decision["unknown_slots"] == ["nope"]
    assert Exposure.objects.count() == 1


@pytest.fixture
def experiment(site, hero, people, django_capture_on_commit_callbacks):
    slot, variants = hero
    experiment = Experiment.objects.create(site=site, key="hero-test", name="Hero test", slot=slot)
    ExperimentArm.objects.create(experiment=experiment, variant=variants["hero-default"], is_control=True, weight=0.5)
    ExperimentArm.objects.create(experiment=experiment, variant=variants["hero-viral"], weight=0.5)
    with django_capture_on_commit_callbacks(execute=True):
        return approved(experiment, people)


def test_assignment_is_sticky_and_recorded(api, experiment):
    start(api, "s-1", visitor_id="v-1", device="desktop", source="google", **consent_body())
    first = decide(api, "s-1")["slots"]["hero"]
    start(api, "s-2", visitor_id="v-1", device="mobile", source="tiktok")
    second = decide(api, "s-2")["slots"]["hero"]

    assert first["experiment"] == second["experiment"] == "hero-test"
    assert first["variant"] == second["variant"]
    visitor = Visitor.objects.get(visitor_id="v-1")
    assignment = Assignment.objects.get(visitor=visitor)
    assert assignment.variant.key == first["variant"]
    assert assignment.bucket == bucket("hero-test", "v-1", "arm")


def test_no_consent_visitor_gets_control_and_is_not_in_the_experiment(api, experiment):
    for index in range(20):
        start(api, f"s-{index}", device="mobile", source="tiktok", **consent_body(False))
        slot = decide(api, f"s-{index}")["slots"]["hero"]
        assert (slot["variant"], slot["experiment"]) == ("hero-default", None)
    assert Assignment.objects.count() == 0
    assert Exposure.objects.filter(experiment__isnull=False).count() == 0


def test_assignment_is_the_same_in_another_process():
    experiment = ExperimentConfig(
        id=1,
        key="hero-test",
        slot="hero",
        traffic_share=1.0,
        allocation=Allocation.FIXED,
        arms=(ArmConfig(10, True, 0.3), ArmConfig(11, False, 0.7)),
    )
    here = [arm_for_bucket(experiment, bucket("hero-test", f"v-{i}", "arm")) for i in range(200)]
    code = (
        "from personalization.decisions import arm_for_bucket, bucket;"
        "from personalization.selectors import ArmConfig, ExperimentConfig;"
        "e = ExperimentConfig(id=1, key='hero-test', slot='hero', traffic_share=1.0, allocation='fixed',"
        " arms=(ArmConfig(10, True, 0.3), ArmConfig(11, False, 0.7)));"
        "print(','.join(str(arm_for_bucket(e, bucket('hero-test', f'v-{i}', 'arm'))) for i in range(200)))"
    )
    env_python = [
        sys.executable,
        "-c",
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup();" + code,
    ]
    out = subprocess.run(env_python, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    assert [int(x) for x in out.split(",")] == here


def test_weights_are_respected_within_sampling_error():
    experiment = ExperimentConfig(
        id=1,
        key="weights",
        slot="hero",
        traffic_share=1.0,
        allocation=Allocation.FIXED,
        arms=(ArmConfig(1, True, 0.2), ArmConfig(2, False, 0.3), ArmConfig(3, False, 0.5)),
    )
    n = 20_000
    counts = {1: 0, 2: 0, 3: 0}
    for i in range(n):
        counts[arm_for_bucket(experiment, bucket("weights", f"visitor-{i}", "arm"))] += 1
    # Each share within 4 standard errors of its weight.
    for arm in experiment.arms:
        se = (arm.weight * (1 - arm.weight) / n) ** 0.5
        assert abs(counts[arm.variant_id] / n - arm.weight) < 4 * se


def test_conversion_attribution_lists_variants_seen_before(api, hero):
    start(api, "s-mob", device="mobile", source="tiktok", **consent_body())
    decide(api, "s-mob")
    response = api.post(
        "/api/v1/sessions/s-mob/conversions",
        {"event_id": "7d0c1a3e-0000-4000-8000-000000000001", "type": "purchase", "value": "10.00"},
        format="json",
    )
    assert response.status_code == 201
    variants = response.json()["attribution"]["variants"]
    assert [(v["variant"], v["version"], v["experiment"]) for v in variants] == [("hero-viral", 1, None)]


def test_edited_live_experiment_keeps_serving_its_approved_traffic_share(api, experiment, people):
    from personalization.services.approvals import approvable_edit

    marketer, _ = people
    approvable_edit(obj=experiment, actor=marketer, changes={"traffic_share": 0.01})

    served = 0
    for index in range(20):
        start(api, f"s-{index}", device="desktop", source="google", slots=["hero"], **consent_body())
        served += Exposure.objects.filter(session__session_id=f"s-{index}", experiment=experiment).count()
    assert served == 20  # the approved share is 1.0; the 0.01 draft is not live


def test_the_decision_statements_are_prepared_once_per_connection(api, hero):
    # Given sessions started through the API
    for index in range(7):
        start(api, f"s-{index}", device="mobile", source="tiktok", **consent_body())

    # When seven decisions are made on this connection
    for index in range(7):
        assert decide(api, f"s-{index}")["slots"]["hero"]["variant"] == "hero-viral"

    # Then PostgreSQL holds the session read and the decision's write as prepared statements
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(statement.lstrip().startswith("WITH held AS") for statement in prepared)
    assert any(
        statement.startswith('SELECT s."id"') and "personalization_assignment" in statement for statement in prepared
    )
    assert Exposure.objects.filter(variant__key="hero-viral").count() == 7
