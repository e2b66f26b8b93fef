"""The simulator's experiment mode against the running API: ground-truth rates per variant."""

import re
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from devtools.simulation import default_anchor
from journeys.models import ConversionEvent
from journeys.services.sites import site_create
from personalization.models import ContentVariant, Experiment, ExperimentArm, Exposure, Slot
from tests.personalization.helpers import approved, make_people

# Recent, as the API accepts client timestamps only within CLIENT_TIMESTAMP_PAST_DAYS; one
# anchor for every run of the module, so a replay sends the same events.
ANCHOR = default_anchor(datetime.now(UTC)).isoformat()


@pytest.fixture
def experiment_site(transactional_db, django_user_model):
    site = site_create(name="Exp", domain="exp.example")
    people = make_people(django_user_model)
    slot = Slot.objects.create(site=site, key="hero", name="Hero")
    experiment = Experiment.objects.create(site=site, key="hero-test", name="Hero test", slot=slot)
    for key, control in [("hero-a", True), ("hero-b", False)]:
        variant = ContentVariant.objects.create(
            site=site, slot=slot, key=key, name=key, payload={"headline": key}, is_default=control
        )
        approved(variant, people)
        ExperimentArm.objects.create(experiment=experiment, variant=variant, is_control=control, weight=0.5)
    approved(experiment, people)
    return site


def simulate(live_server, site, *args):
    out = StringIO()
    call_command(
        "simulate",
        "--site-key",
        site.public_key,
        "--visitors",
        "40",
        "--seed",
        "5",
        "--base-url",
        live_server.url,
        "--concurrency",
        "4",
        "--anchor",
        ANCHOR,
        *args,
        stdout=out,
    )
    return out.getvalue()


def purchases_by_variant() -> dict[str, tuple[int, int]]:
    """variant -> (sessions exposed by the first decision, of which purchased)."""
    result = {}
    for key in ("hero-a", "hero-b"):
        sessions = set(Exposure.objects.filter(variant__key=key).values_list("session_id", flat=True))
        bought = set(ConversionEvent.objects.filter(type="purchase").values_list("session_id", flat=True))
        result[key] = (len(sessions), len(sessions & bought))
    return result


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_variant_rates_decide_purchases_of_sessions_shown_each_variant(live_server, experiment_site):
    output = simulate(live_server, experiment_site, "--variant-rate", "hero-a=0", "--variant-rate", "hero-b=1")

    counts = purchases_by_variant()
    shown_a, bought_a = counts["hero-a"]
    shown_b, bought_b = counts["hero-b"]
    assert shown_a > 0 and shown_b > 0
    assert (bought_a, bought_b) == (0, shown_b)
    assert re.search(rf"variant hero-b: {shown_b} sessions, {shown_b} purchases, observed 1.000, true 1.000", output)
    assert re.search(rf"variant hero-a: {shown_a} sessions, 0 purchases, observed 0.000, true 0.000", output)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_aa_mode_gives_every_variant_the_same_rate(live_server, experiment_site):
    output = simulate(live_server, experiment_site, "--variant-rate", "hero-a", "--variant-rate", "hero-b", "--aa", "1")

    counts = purchases_by_variant()
    assert all(shown == bought and shown > 0 for shown, bought in counts.values())
    assert "true 1.000" in output


def test_variant_rate_outside_zero_one_is_refused():
    with pytest.raises(CommandError, match="RATE in"):
        call_command("simulate", "--site-key", "pk_x", "--variant-rate", "hero-a=1.5")
