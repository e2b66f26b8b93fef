"""Known traffic for the dashboard tests, made through the real API and services, then rolled up.

``shop_traffic`` starts three sessions today through ``POST /api/v1/sessions`` (and moves
and converts them through the API), ``hero_experiment`` adds a live experiment with known
counts and lets the optimizer propose a winner, ``guarded_experiment`` one whose better
treatment bounces more (a guardrail worse, so no winner), ``low_stock_rule`` shows a cue through the
real decision engine. ``roll_up`` runs the rollup task, as the worker would.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from analytics.tasks import rollups_update_task
from personalization.models import Allocation, TriggerType
from personalization.services.optimizer import experiments_optimize
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from tests.analytics.arm_data import arm_traffic
from tests.journeys.helpers import event, move, post_events, start
from tests.personalization.helpers import staff
from tests.personalization.optimizer_helpers import add_traffic, live_experiment
from tests.personalization.scarcity_helpers import carrying_variant, cues, live_offer, make_rule

REVENUE = Decimal("49.90")
HERO = {"a": (1000, 100), "b": (1000, 200)}  # variant letter -> (exposures, conversions)


def shop_traffic(api) -> None:
    """Today: two mobile TikTok sessions (one moves to decision and buys for 49.90), one desktop Google session."""
    consent = {"personalization": True, "cross_device": False}
    for session_id, device, source, persona in (
        ("s-buyer", "mobile", "tiktok", "TechEarlyAdopter"),
        ("s-browser", "mobile", "tiktok", "TechEarlyAdopter"),
        ("s-researcher", "desktop", "google", "Researcher"),
    ):
        response = start(
            api, session_id, device=device, source=source, persona={"type": persona, "confidence": 0.9}, consent=consent
        )
        assert response.status_code == 201, response.json()
    for session_id, stage in (("s-buyer", "consideration"), ("s-buyer", "decision"), ("s-researcher", "consideration")):
        assert move(api, session_id, stage).status_code == 200
    response = api.post(
        "/api/v1/sessions/s-buyer/conversions",
        {"event_id": str(uuid.uuid4()), "type": "purchase", "value": str(REVENUE), "currency": "EUR"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert post_events(api, [event("s-buyer"), event("s-browser"), event("s-researcher")]).json()["accepted"] == 3


def hero_experiment(site):
    """A live 50/50 experiment: control 100/1000, treatment 200/1000; the optimizer proposes the treatment as winner."""
    experiment = live_experiment(site, allocation=Allocation.FIXED, weights=[0.5, 0.5], minimum_sample=100)
    for letter, (exposures, conversions) in HERO.items():
        add_traffic(experiment, letter, exposures=exposures, conversions=conversions)
    experiments_optimize(site_id=site.pk)
    return experiment


def guarded_experiment(site):
    """A live 50/50 experiment on ``offer-test``: the treatment converts better (14% vs 10% of 2,000
    sessions, orders of 45/65 EUR vs 40/60 EUR) but bounces more (30% vs 20%), a guardrail worse."""
    experiment = live_experiment(site, key="offer-test", allocation=Allocation.FIXED, minimum_sample=100)
    arm_traffic(experiment, "a", sessions=2000, orders=["40.00", "60.00"] * 100, ttc_minutes=4, bounces=400)
    arm_traffic(experiment, "b", sessions=2000, orders=["45.00", "65.00"] * 140, ttc_minutes=6, refunds=10, bounces=600)
    experiments_optimize(site_id=site.pk)
    return experiment


def low_stock_rule(site, api, django_user_model):
    """A live low-stock rule (no holdout) shown once to a new session through the decision engine.

    The session starts with the ``offer_banner`` slot, whose default variant carries the
    offer, so its decision also records one content personalization (persona confidence 0.8).
    """
    people = staff(django_user_model, "mia", "Marketers"), staff(django_user_model, "ada", "Approvers")
    offer = live_offer(site, people, stock=3)
    carrying_variant(site, offer, people, is_default=True)
    rule = make_rule(site, offer, TriggerType.LOW_STOCK, people, threshold=5)
    response = start(
        api,
        "s-cue",
        device="desktop",
        source="google",
        persona={"type": "BargainHunter", "confidence": 0.8},
        consent={"personalization": True},
        slots=["offer_banner"],
    )
    assert response.status_code == 201, response.json()
    scarcity_evidence_refresh()
    assert [cue["message"] for cue in cues("s-cue")] == ["Only 3 left"]
    return rule


def roll_up() -> None:
    rollups_update_task.delay()
