"""Experiment traffic with order values, refunds, bounces and conversion times, for the metrics tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from journeys.models import ConversionEvent, JourneySession
from personalization.models import Experiment
from tests.personalization.optimizer_helpers import add_traffic


def conversion(session: JourneySession, type: str, at: datetime, value: str = "0", currency: str = "EUR"):
    return ConversionEvent(
        site_id=session.site_id,
        session=session,
        event_id=uuid.uuid4(),
        type=type,
        value=Decimal(value),
        currency=currency,
        payload_hash="p",
        converted_at=at,
    )


def arm_traffic(
    experiment: Experiment,
    letter: str,
    *,
    sessions: int,
    orders: list[str] = (),
    ttc_minutes: float = 5,
    refunds: int = 0,
    bounces: int = 0,
    exposed_at: datetime | None = None,
) -> list[JourneySession]:
    """``sessions`` exposed to the arm; the first ``len(orders)`` buy (the primary goal) for
    the values given, ``ttc_minutes`` after exposure; the first ``refunds`` of them are refunded;
    the last ``bounces`` sessions bounce (one touchpoint, still in awareness, no conversion),
    the others had three touchpoints."""
    made = add_traffic(experiment, letter, exposures=sessions, conversions=0, exposed_at=exposed_at)
    at = made[0].started_at
    JourneySession.objects.filter(pk__in=[s.pk for s in made[: sessions - bounces]]).update(total_touchpoints=3)
    JourneySession.objects.filter(pk__in=[s.pk for s in made[sessions - bounces :]]).update(total_touchpoints=1)
    rows = [
        conversion(session, experiment.primary_goal, at + timedelta(minutes=ttc_minutes), value)
        for session, value in zip(made, orders, strict=False)
    ]
    rows += [conversion(session, "refund", at + timedelta(days=1)) for session in made[:refunds]]
    ConversionEvent.objects.bulk_create(rows)
    return made
