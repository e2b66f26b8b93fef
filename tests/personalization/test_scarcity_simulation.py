"""Simulated traffic through the real HTTP API while a stock runs out and an offer ends; then the ledger
is audited: no cue was ever shown whose evidence contradicts it."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from devtools.simulation import plan_visitors
from journeys.services.sites import site_create
from personalization.cue_text import format_ends_at
from personalization.models import ClaimLedger, HoldoutMembership, TriggerType
from personalization.services.scarcity.evidence import (
    purchases_count,
    scarcity_evidence_refresh,
    today_start,
    viewers_count,
)
from personalization.services.scarcity.offers import offer_stock_set
from tests.personalization.helpers import make_people
from tests.personalization.scarcity_helpers import carrying_variant, live_offer, make_rule

SKU = "SIM1"
VISITORS = 25
SEEDS = (31, 32, 33, 34)  # one run per phase
HOLDOUT = 0.2
RUNS_FOR = 600  # seconds the offer runs: far more than the three phases of traffic take (about 20 s)


class Clock:
    """``timezone.now()`` of this process - the test and its live server's thread - moved
    forward by the test instead of waited for. Client timestamps and the database keep
    the wall clock; a few minutes' skew is well inside the API's tolerances."""

    def __init__(self, monkeypatch) -> None:
        self.offset = timedelta(0)
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + self.offset)

    def advance_past(self, moment) -> None:
        self.offset += moment - timezone.now() + timedelta(seconds=1)


def _simulate(live_server, site, seed: int) -> str:
    out = StringIO()
    call_command(
        "simulate",
        site_key=site.public_key,
        visitors=VISITORS,
        seed=seed,
        base_url=live_server.url,
        concurrency=4,
        offer_sku=SKU,
        stdout=out,
    )
    return out.getvalue()


def _stock_at(timeline: list[tuple], moment) -> int:
    return [stock for at, stock in timeline if at <= moment][-1]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_no_cue_shown_to_simulated_traffic_contradicts_its_evidence(
    live_server, django_user_model, monkeypatch, settings
):
    # each simulated visitor calls from its own address (X-Forwarded-For, as behind a proxy):
    # social proof counts them as the people they are
    settings.RATE_LIMIT_TRUSTED_PROXIES = 1
    clock = Clock(monkeypatch)
    first_phase = plan_visitors(seed=SEEDS[0], visitors=VISITORS, anchor=timezone.now())
    assert any(s.truth.purchased for v in first_phase for s in v.sessions)  # purchases to count in phase 2

    site = site_create(name="Sim", domain="sim.example")
    people = make_people(django_user_model)
    began = timezone.now()
    ends_at = (began + timedelta(seconds=RUNS_FOR)).replace(microsecond=0)
    offer = live_offer(
        site, people, sku=SKU, discount="10", starts_at=began - timedelta(hours=1), ends_at=ends_at, stock=4
    )
    timeline = [(offer.stock_updated_at, 4)]
    carrying_variant(site, offer, people, is_default=True)
    rules = {
        trigger: make_rule(site, offer, trigger, people, holdout_share=HOLDOUT, **fields)
        for trigger, fields in (
            (TriggerType.LOW_STOCK, {"threshold": 5}),
            (TriggerType.OFFER_DEADLINE, {}),
            (TriggerType.FLASH_SALE, {}),
            (TriggerType.SOCIAL_PROOF_VIEWS, {"threshold": 1}),
            (TriggerType.SOCIAL_PROOF_PURCHASES, {}),
        )
    }

    phases = []
    # 1: stock 4 (low), deadline and flash sale running, nothing counted yet
    scarcity_evidence_refresh()
    phases.append((timezone.now(), _simulate(live_server, site, SEEDS[0])))
    # 2: the stock sells down to 1
    offer_stock_set(offer=offer, stock_remaining=1)
    timeline.append((timezone.now(), 1))
    scarcity_evidence_refresh()
    phases.append((timezone.now(), _simulate(live_server, site, SEEDS[1])))
    # 3: sold out
    offer_stock_set(offer=offer, stock_remaining=0)
    timeline.append((timezone.now(), 0))
    scarcity_evidence_refresh()
    phases.append((timezone.now(), _simulate(live_server, site, SEEDS[2])))
    # 4: the offer has ended
    assert timezone.now() < ends_at, "the first three phases took longer than the offer ran"
    clock.advance_past(ends_at)
    scarcity_evidence_refresh()
    after_end = timezone.now()
    phases.append((after_end, _simulate(live_server, site, SEEDS[3])))

    claims = list(ClaimLedger.objects.select_related("rule", "session").order_by("shown_at", "id"))
    held = set(HoldoutMembership.objects.filter(in_holdout=True).values_list("rule_id", "session_id"))
    by_type = {trigger: [c for c in claims if c.trigger_type == trigger] for trigger in rules}

    # every kind of cue was shown at some point, and the holdout really held some sessions out
    assert all(by_type.values()), {trigger: len(items) for trigger, items in by_type.items()}
    assert held

    for claim in claims:
        rule = claim.rule
        assert (claim.rule_id, claim.session_id) not in held
        assert claim.shown_at < ends_at  # nothing at all once the offer ended
        age = claim.shown_at - claim.evidence_measured_at
        assert timedelta(seconds=-5) <= age <= timedelta(seconds=rule.staleness_seconds)
        evidence = claim.evidence
        if claim.trigger_type == TriggerType.LOW_STOCK:
            stock = _stock_at(timeline, claim.shown_at)
            assert evidence["stock_remaining"] == stock
            assert 0 < stock <= 5
            assert claim.text == f"Only {stock} left"
        elif claim.trigger_type in (TriggerType.OFFER_DEADLINE, TriggerType.FLASH_SALE):
            assert claim.ends_at == ends_at
            assert evidence["ends_at"] == ends_at.isoformat()
            assert format_ends_at(ends_at) in claim.text
        elif claim.trigger_type == TriggerType.SOCIAL_PROOF_VIEWS:
            measured = claim.evidence_measured_at
            recount = viewers_count(
                offer_id=offer.pk, site_id=site.pk, sku=SKU, since=measured - timedelta(minutes=60), until=measured
            )
            assert evidence["count"] == recount >= 1
            assert claim.text == f"{recount} people viewed this in the last hour"
        elif claim.trigger_type == TriggerType.SOCIAL_PROOF_PURCHASES:
            measured = claim.evidence_measured_at
            recount = purchases_count(site_id=site.pk, sku=SKU, since=today_start(measured), until=measured)
            assert evidence["count"] == recount >= 1
            assert claim.text == f"{recount} people bought this today"

    # the guards reacted: no low-stock cue once sold out, no countdown once ended
    sold_out_at = timeline[-1][0]
    assert not [c for c in by_type[TriggerType.LOW_STOCK] if c.shown_at >= sold_out_at]
    assert not [c for c in claims if c.shown_at >= after_end]
    assert {c.text for c in by_type[TriggerType.LOW_STOCK]} == {"Only 4 left", "Only 1 left"}


def test_offer_sku_names_the_offer_in_add_to_carts_and_purchases_and_changes_nothing_else():
    from devtools.simulation import with_offer_sku

    anchor = timezone.now().replace(microsecond=0)
    plans = plan_visitors(seed=7, visitors=30, anchor=anchor)
    named = with_offer_sku(plans, SKU)

    assert plans == plan_visitors(seed=7, visitors=30, anchor=anchor)  # the input is not touched
    carts = purchases_seen = 0
    for original, changed in zip(plans, named, strict=True):
        for before, after in zip(original.sessions, changed.sessions, strict=True):
            assert after.truth == before.truth
            for stage_before, stage_after in zip(before.stages, after.stages, strict=True):
                for event_before, event_after in zip(stage_before.events, stage_after.events, strict=True):
                    if event_before.get("interaction_type") == "add_to_cart":
                        carts += 1
                        assert event_after["interaction_data"] == {**event_before["interaction_data"], "sku": SKU}
                    else:
                        assert event_after == event_before
                for conversion_before, conversion_after in zip(
                    stage_before.conversions, stage_after.conversions, strict=True
                ):
                    if conversion_before["type"] == "purchase":
                        purchases_seen += 1
                        assert conversion_after["product"]["sku"] == SKU
                        assert conversion_after["event_id"] == conversion_before["event_id"]
    assert carts and purchases_seen
