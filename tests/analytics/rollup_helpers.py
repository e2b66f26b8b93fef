"""Raw rows for the rollup tests, written with the ORM (so the change-capture triggers fire)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import F

from analytics.models import PersonalizationDaily, ScarcityRuleDaily, SessionDaily, StageFlowDaily, VariantDaily
from journeys.models import STAGE_ORDER, ConversionEvent, CrossDeviceLink, JourneySession, StageTransition, Visitor
from personalization.models import (
    ClaimLedger,
    ContentVariant,
    Experiment,
    ExperimentArm,
    Exposure,
    HoldoutMembership,
    Offer,
    PersonalizationRecord,
    ScarcityRule,
    Slot,
)

DAY1 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)

ROLLUP_MODELS = [SessionDaily, StageFlowDaily, VariantDaily, ScarcityRuleDaily, PersonalizationDaily]


@dataclass
class World:
    site: object
    variant_a: ContentVariant
    variant_b: ContentVariant
    experiment: Experiment
    rule: ScarcityRule


def world(site, *, prefix: str = "") -> World:
    slot = Slot.objects.create(site=site, key=f"{prefix}hero", name="Hero")
    variant_a = ContentVariant.objects.create(site=site, slot=slot, key=f"{prefix}hero-a", name="A")
    variant_b = ContentVariant.objects.create(site=site, slot=slot, key=f"{prefix}hero-b", name="B")
    experiment = Experiment.objects.create(site=site, key=f"{prefix}hero-test", name="Hero test", slot=slot)
    ExperimentArm.objects.create(experiment=experiment, variant=variant_a, is_control=True)
    ExperimentArm.objects.create(experiment=experiment, variant=variant_b)
    offer = Offer.objects.create(site=site, name="Earbuds", sku=f"{prefix}A1", price=Decimal("49.90"))
    rule = ScarcityRule.objects.create(
        site=site,
        key=f"{prefix}low-stock",
        name="Low stock",
        trigger_type="low_stock",
        offer=offer,
        message_template="Only {stock} left",
    )
    return World(site, variant_a, variant_b, experiment, rule)


def session(
    site,
    session_id: str,
    *,
    at: datetime,
    device: str = "mobile",
    path: str = "mobile_tiktok_fast_track",
    persona: str = "",
    returning: bool = False,
    touchpoints: int = 0,
    cross_device: bool = False,
) -> JourneySession:
    """A session started at ``at`` with its start transition, as ``session_start`` writes it."""
    visitor = Visitor.objects.create(site=site, visitor_id=f"v-{session_id}")
    link = None
    if cross_device:
        link = CrossDeviceLink.objects.create(site=site, identifier_hash=f"h-{session_id}", method="email")
    row = JourneySession.objects.create(
        site=site,
        visitor=visitor,
        session_id=session_id,
        persona_type=persona,
        device_type=device,
        journey_path=path,
        returning=returning,
        started_at=at,
        last_activity_at=at,
        conversion_probability=0.2,
        total_touchpoints=touchpoints,
        cross_device_link=link,
        request_hash="h",
    )
    StageTransition.objects.create(session=row, from_stage="", to_stage="awareness", conversion_probability=0.2)
    return row


def advance(row: JourneySession, to: str) -> JourneySession:
    """A stage move, as ``stage_advance`` writes it: a transition, then the session's stages."""
    row.refresh_from_db()
    StageTransition.objects.create(session=row, from_stage=row.current_stage, to_stage=to, conversion_probability=0.3)
    row.current_stage = to
    if STAGE_ORDER[to] > STAGE_ORDER[row.max_stage]:
        row.max_stage = to
    row.save(update_fields=["current_stage", "max_stage"])
    return row


def convert(row: JourneySession, value: str, *, at: datetime, type: str = "purchase") -> ConversionEvent:
    return ConversionEvent.objects.create(
        site=row.site,
        session=row,
        event_id=uuid.uuid4(),
        type=type,
        value=Decimal(value),
        payload_hash="p",
        converted_at=at,
    )


def expose(row: JourneySession, variant: ContentVariant, *, at: datetime, experiment: Experiment | None = None):
    return Exposure.objects.create(
        session=row, variant=variant, experiment=experiment, variant_version=1, exposed_at=at
    )


def personalize(
    row: JourneySession,
    variant: ContentVariant | None,
    *,
    strategy: str,
    engagement_time: int = 0,
    confidence: float | None = None,
    attributed: bool = False,
    kind: str = "content",
) -> PersonalizationRecord:
    return PersonalizationRecord.objects.create(
        session=row,
        personalization_type=kind,
        strategy=strategy,
        variant=variant,
        engagement_time=engagement_time,
        confidence=confidence,
        conversion_attributed=attributed,
    )


def member(row: JourneySession, rule: ScarcityRule, *, holdout: bool, at: datetime) -> HoldoutMembership:
    return HoldoutMembership.objects.create(rule=rule, session=row, in_holdout=holdout, bucket=0.5, assigned_at=at)


def claim(row: JourneySession, rule: ScarcityRule, *, at: datetime) -> ClaimLedger:
    return ClaimLedger.objects.create(
        session=row,
        rule=rule,
        rule_version=1,
        trigger_type=rule.trigger_type,
        text="Only 3 left",
        evidence={"stock_remaining": 3},
        evidence_measured_at=at,
        shown_at=at,
    )


def engagement_add(record: PersonalizationRecord, seconds: int) -> None:
    PersonalizationRecord.objects.filter(pk=record.pk).update(engagement_time=F("engagement_time") + seconds)


def rollup_rows() -> dict[str, list[tuple]]:
    """Every row of every rollup table, without ids, sorted: comparable across rebuilds."""
    out = {}
    for model in ROLLUP_MODELS:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        out[model.__name__] = sorted(model.objects.values_list(*fields), key=repr)
    return out
