"""Experiments with known counts, built with plain ORM bulk inserts (no HTTP), for optimizer tests."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta

from django.utils import timezone

from journeys.models import ConversionEvent, JourneySession, Visitor
from personalization.models import (
    Allocation,
    ApprovalRequest,
    Assignment,
    AuditLog,
    ContentVariant,
    Experiment,
    ExperimentArm,
    Exposure,
    OptimizationProposal,
    Slot,
    Status,
)

_serial = itertools.count()


def live_experiment(
    site,
    *,
    key: str = "hero-test",
    arms: int = 2,
    weights: list[float] | None = None,
    allocation: str = Allocation.FIXED,
    **fields,
) -> Experiment:
    """A published, live experiment on its own slot; variants ``{key}-a`` (control), ``-b``, ..."""
    slot = Slot.objects.create(site=site, key=f"slot-{key}", name=key)
    variants = ContentVariant.objects.bulk_create(
        ContentVariant(
            site=site,
            slot=slot,
            key=f"{key}-{chr(ord('a') + index)}",
            name=f"{key} {index}",
            status=Status.LIVE,
            published={"payload": {}},
            published_version=1,
        )
        for index in range(arms)
    )
    experiment = Experiment.objects.create(
        site=site,
        key=key,
        name=key,
        slot=slot,
        allocation=allocation,
        status=Status.LIVE,
        published={"key": key},
        published_version=1,
        started_at=timezone.now() - timedelta(days=7),
        **fields,
    )
    weights = weights or [1 / arms] * arms
    ExperimentArm.objects.bulk_create(
        ExperimentArm(experiment=experiment, variant=variant, is_control=index == 0, weight=weights[index])
        for index, variant in enumerate(variants)
    )
    return experiment


def variant(experiment: Experiment, letter: str) -> ContentVariant:
    return ContentVariant.objects.get(site=experiment.site, key=f"{experiment.key}-{letter}")


def add_traffic(
    experiment: Experiment,
    letter: str,
    *,
    exposures: int,
    conversions: int,
    exposed_at: datetime | None = None,
    goal: str | None = None,
    assigned: bool = False,
) -> list[JourneySession]:
    """``exposures`` new sessions exposed to the arm, the first ``conversions`` of them converting.

    With ``assigned`` each session has its own visitor, assigned to the arm
    (``assigned_at`` is the insert time); otherwise the sessions share one visitor.
    """
    site = experiment.site
    shown = variant(experiment, letter)
    exposed_at = exposed_at or timezone.now() - timedelta(hours=1)
    tag = f"{experiment.key}-{letter}-{next(_serial)}"
    # One visitor per session only when assignments are wanted; otherwise one for all.
    visitors = Visitor.objects.bulk_create(
        Visitor(site=site, visitor_id=f"v-{tag}-{i}") for i in range(exposures if assigned else 1)
    )
    sessions = JourneySession.objects.bulk_create(
        JourneySession(
            site=site,
            visitor=visitors[i % len(visitors)],
            session_id=f"s-{tag}-{i}",
            device_type="mobile",
            started_at=exposed_at,
            last_activity_at=exposed_at,
            journey_path="standard_conversion_funnel",
            conversion_probability=0.1,
            request_hash="h",
        )
        for i in range(exposures)
    )
    Exposure.objects.bulk_create(
        Exposure(session=session, variant=shown, experiment=experiment, variant_version=1, exposed_at=exposed_at)
        for session in sessions
    )
    convert(sessions[:conversions], goal or experiment.primary_goal, exposed_at + timedelta(minutes=5))
    if assigned:
        Assignment.objects.bulk_create(
            Assignment(experiment=experiment, visitor=visitor, variant=shown, bucket=0.5) for visitor in visitors
        )
    return sessions


def convert(sessions, goal: str, at: datetime) -> None:
    ConversionEvent.objects.bulk_create(
        ConversionEvent(
            site_id=session.site_id,
            session=session,
            event_id=uuid.uuid4(),
            type=goal,
            payload_hash="p",
            converted_at=at,
        )
        for session in sessions
    )


def state() -> dict:
    """Everything the optimizer and approvals may write, for before/after comparisons."""
    return {
        "proposals": list(OptimizationProposal.objects.order_by("id").values()),
        "arms": list(ExperimentArm.objects.order_by("id").values("id", "weight", "is_paused")),
        "experiments": list(Experiment.objects.order_by("id").values("id", "status", "ended_at", "winner_id")),
        "requests": list(ApprovalRequest.objects.order_by("id").values()),
        "audit": list(AuditLog.objects.order_by("id").values("id", "action", "actor_id", "object_id", "changes")),
    }
