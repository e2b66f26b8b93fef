"""Conversions and the attribution snapshot taken when they happen."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import hooks
from core.hashing import payload_hash
from journeys.models import STAGE_ORDER, ConversionEvent, IdempotencyConflict, JourneySession, Stage
from journeys.services.privacy import VisitorErased
from journeys.services.sessions import stage_advance
from journeys.visitor_lock import visitor_hold


def attribution_snapshot(session: JourneySession, at: datetime) -> dict:
    """The journey that led to a conversion, frozen when it happens."""
    snapshot: dict = {
        "journey_path": session.journey_path,
        "source": session.source,
        "campaign": session.entry_point.get("campaign") or session.utm.get("utm_campaign") or "",
        "device_type": session.device_type,
        "persona": session.persona_type,
        "stages": list(session.transitions.order_by("created_at", "id").values_list("to_stage", flat=True)),
        "touchpoints": session.total_touchpoints,
        "variants": [],
        "offers": [],
        "scarcity": [],
    }
    # what upper apps know the session saw (variants, offers, cues): core.hooks
    for source in hooks.attribution_sources():
        snapshot.update(source(session, at))
    return snapshot


@dataclass(frozen=True)
class ConversionResult:
    conversion: ConversionEvent
    created: bool
    conflict: bool


def conversion_record(
    *,
    session: JourneySession,
    event_id: uuid.UUID,
    type: str,
    value: Decimal,
    currency: str,
    product: Mapping,
    funnel_step: str,
    raw: Mapping,
    now: datetime | None = None,
) -> ConversionResult:
    """Record a conversion, idempotent on ``(site, event_id)``.

    The first write wins; a repeat with the same payload is a duplicate, one with a
    different payload is logged as a conflict. Conversion types named in
    ``CONVERSION_STAGE_TYPES`` move the session to the ``conversion`` stage.
    :class:`VisitorErased` (nothing written) when the session's visitor was erased since
    the session was read (:mod:`journeys.visitor_lock`).
    """
    digest = payload_hash(raw)
    existing = ConversionEvent.objects.filter(site_id=session.site_id, event_id=event_id).first()
    if existing is None:
        try:
            with transaction.atomic():
                if not visitor_hold(session.visitor_id):
                    raise VisitorErased(session_id=session.session_id)
                now = now or timezone.now()
                conversion = ConversionEvent.objects.create(
                    site_id=session.site_id,
                    session=session,
                    event_id=event_id,
                    type=type,
                    value=value,
                    currency=currency,
                    product=dict(product),
                    funnel_step=funnel_step,
                    attribution=attribution_snapshot(session, now),
                    payload_hash=digest,
                    converted_at=now,
                )
                if (
                    type in settings.CONVERSION_STAGE_TYPES
                    and STAGE_ORDER[session.current_stage] < STAGE_ORDER[Stage.CONVERSION]
                ):
                    stage_advance(session=session, to=Stage.CONVERSION, trigger=f"conversion:{type}", now=now)
                hooks.feed("conversion", conversion=conversion, session=session)
                return ConversionResult(conversion, True, False)
        except IntegrityError:
            existing = ConversionEvent.objects.get(site_id=session.site_id, event_id=event_id)
    conflict = existing.payload_hash != digest
    if conflict:
        IdempotencyConflict.objects.create(
            site_id=session.site_id,
            kind="conversion",
            client_id=str(event_id),
            stored_hash=existing.payload_hash,
            received_hash=digest,
            received_payload={**raw, "session_id": session.session_id},
        )
    return ConversionResult(existing, False, conflict)
