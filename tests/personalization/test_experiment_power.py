"""The power figure (sample size per arm, expected duration from the site's own traffic) and the
approver's page, which shows an experiment's arms by variant name beside that figure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from journeys.models import JourneySession
from personalization.models import ContentVariant, Experiment, Slot
from personalization.selectors import experiment_power
from personalization.services.approvals import approvable_create, approval_submit
from tests.personalization.helpers import approved
from tests.personalization.optimizer_helpers import add_traffic, live_experiment


def test_power_comes_from_the_slot_s_own_recent_sessions_and_conversions(site):
    now = timezone.now()
    experiment = live_experiment(site, key="hero-test")
    add_traffic(experiment, "a", exposures=600, conversions=30, exposed_at=now - timedelta(days=10))
    add_traffic(experiment, "b", exposures=400, conversions=20, exposed_at=now - timedelta(days=10))
    # older than the 14-day window: not counted
    add_traffic(experiment, "a", exposures=500, conversions=0, exposed_at=now - timedelta(days=20))

    power = experiment_power(experiment=experiment, now=now)

    assert (power.sessions, power.conversions, power.window_days, power.baseline) == (1000, 50, 10.0, 0.05)
    assert (power.per_arm, power.daily_sessions, power.days) == (78785, 100.0, 1575.7)
    assert power.as_text() == (
        "78,785 exposed sessions per arm (2 arms) detect a +10% relative lift in the purchase rate (baseline 5.00%) "
        "with 80% power at 95% confidence (the always-valid test the winner rule uses). Expected duration: about "
        "1,575.7 days at traffic share 100% with the smallest arm at 50% of it. Basis: slot slot-hero-test's "
        "exposed sessions: 1,000 sessions in the last 10 days (100 a day), 50 with a purchase conversion."
    )


def test_the_smallest_arm_and_the_traffic_share_set_the_duration(site):
    now = timezone.now()
    experiment = live_experiment(site, key="hero-test", arms=3, weights=[0.5, 0.25, 0.25], traffic_share=0.5)
    add_traffic(experiment, "a", exposures=1000, conversions=50, exposed_at=now - timedelta(days=14))

    power = experiment_power(experiment=experiment, now=now)

    # 3 arms: alpha split over the 2 comparisons with control
    assert power.per_arm == 87832
    assert power.days == pytest.approx(87832 / ((1000 / 14) * 0.5 * 0.25))


def test_without_any_conversion_the_figure_says_why_it_cannot_be_computed(site):
    now = timezone.now()
    experiment = live_experiment(site, key="hero-test")
    add_traffic(experiment, "a", exposures=300, conversions=0, exposed_at=now - timedelta(days=3))

    power = experiment_power(experiment=experiment, now=now)

    assert (power.per_arm, power.days) == (None, None)
    assert power.as_text() == (
        "Not computable yet: no purchase conversions to take a baseline rate from (slot slot-hero-test's exposed "
        "sessions: 300 sessions in the last 3 days (100 a day), 0 with a purchase conversion). The sample size "
        "needs the control's usual conversion rate."
    )


def test_a_slot_never_shown_takes_the_site_s_sessions(site):
    now = timezone.now()
    experiment = live_experiment(site, key="hero-test")
    other = live_experiment(site, key="other")
    add_traffic(other, "a", exposures=200, conversions=10, exposed_at=now - timedelta(days=2))
    JourneySession.objects.update(started_at=now - timedelta(days=4))

    power = experiment_power(experiment=experiment, now=now)

    assert power.source == "the site's sessions (slot slot-hero-test has not been shown yet)"
    assert (power.sessions, power.conversions, power.window_days, power.baseline) == (200, 10, 4.0, 0.05)


# --- the approver's page ------------------------------------------------------------------------


@pytest.fixture
def submitted(site, people):
    slot = Slot.objects.create(site=site, key="hero", name="Hero")
    variants = [
        approved(ContentVariant.objects.create(site=site, slot=slot, key=key, name=name, payload={}), people)
        for key, name in [("hero-a", "Calm headline"), ("hero-b", "Bold headline")]
    ]
    experiment = approvable_create(
        obj=Experiment(site=site, key="hero-test", name="Hero test", slot=slot),
        actor=people[0],
        arms=[
            {"variant": variants[0].pk, "is_control": True, "weight": 0.6},
            {"variant": variants[1].pk, "is_control": False, "weight": 0.4},
        ],
    )
    return approval_submit(obj=experiment, requester=people[0])


def test_the_approver_sees_the_arms_by_variant_name_and_the_power_figure(submitted, people):
    client = Client()
    client.force_login(people[1])

    page = client.get(reverse("admin:personalization_approvalrequest_change", args=[submitted.pk]))

    assert page.status_code == 200
    diff = dict((name, after) for name, _, after in page.context["diff"])
    assert diff["arms"] == (
        "hero-a (Calm headline, slot hero): control, weight 60%\n"
        "hero-b (Bold headline, slot hero): treatment, weight 40%"
    )
    assert diff["slot"] == f"hero (#{submitted.target.slot_id})"
    assert page.context["power"] == experiment_power(experiment=submitted.target).as_text()
    assert page.context["power"].startswith("Not computable yet: no purchase conversions")
    assert "<h2>Power</h2>" in page.content.decode()


def test_the_experiment_form_shows_the_power_figure(submitted, people):
    client = Client()
    client.force_login(people[0])

    page = client.get(reverse("admin:personalization_experiment_change", args=[submitted.object_id]))

    assert page.status_code == 200
    assert "Sample size and duration" in page.content.decode()
    assert "Not computable yet: no purchase conversions" in page.content.decode()
