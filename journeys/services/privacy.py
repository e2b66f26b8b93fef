"""Consent, cross-device identity, and a visitor's right to export and erase."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.hashing import keyed_hash, normalize_identifier
from journeys.models import (
    CrossDeviceLink,
    IdempotencyConflict,
    JourneySession,
    QuarantinedEvent,
    Site,
    Visitor,
)


class ConsentRequired(Exception):
    """Cross-device linking was asked for a visitor without cross-device consent."""


def consent_apply(
    *, visitor: Visitor, personalization: bool | None, cross_device: bool | None, now: datetime | None = None
) -> Visitor:
    """Set the given consent flags with their timestamps; ``None`` leaves a flag alone.

    Withdrawing cross-device consent unlinks the visitor's sessions from unified
    journeys and forgets the identifier hash. The caller holds the transaction.
    """
    now = now or timezone.now()
    fields: list[str] = []
    if personalization is not None and personalization != visitor.consent_personalization:
        visitor.consent_personalization = personalization
        visitor.consent_personalization_at = now
        fields += ["consent_personalization", "consent_personalization_at"]
    if cross_device is not None and cross_device != visitor.consent_cross_device:
        visitor.consent_cross_device = cross_device
        visitor.consent_cross_device_at = now
        fields += ["consent_cross_device", "consent_cross_device_at"]
        if not cross_device:
            links = set(visitor.sessions.exclude(cross_device_link=None).values_list("cross_device_link_id", flat=True))
            visitor.sessions.update(cross_device_link=None)
            for link in CrossDeviceLink.objects.filter(pk__in=links):
                _refresh_device_sequence(link)
            visitor.user_key = ""
            fields.append("user_key")
    if fields:
        visitor.save(update_fields=fields)
    return visitor


@transaction.atomic
def consent_set(*, site: Site, visitor_id: str, personalization: bool | None, cross_device: bool | None) -> Visitor:
    """Record a visitor's consent choices, creating the visitor if it is new."""
    visitor, _ = Visitor.objects.select_for_update().get_or_create(site=site, visitor_id=visitor_id)
    return consent_apply(visitor=visitor, personalization=personalization, cross_device=cross_device)


def _collapse(devices: list[str]) -> list[str]:
    sequence: list[str] = []
    for device in devices:
        if not sequence or sequence[-1] != device:
            sequence.append(device)
    return sequence


def _refresh_device_sequence(link: CrossDeviceLink) -> None:
    devices = list(link.sessions.order_by("started_at", "pk").values_list("device_type", flat=True))
    if not devices:
        link.delete()
        return
    link.device_sequence = _collapse(devices)
    link.save(update_fields=["device_sequence", "updated_at"])


@dataclass(frozen=True)
class UnifiedJourney:
    link: CrossDeviceLink
    session_ids: list[str]


@transaction.atomic
def identify(*, session: JourneySession, identifier: str, method: str) -> UnifiedJourney:
    """Link a session (and its visitor's other sessions) to one person across devices.

    Only with cross-device consent; otherwise :class:`ConsentRequired` and nothing is
    written. The identifier is stored only as a keyed hash.
    """
    visitor = Visitor.objects.select_for_update().get(pk=session.visitor_id)
    if not visitor.consent_cross_device:
        raise ConsentRequired
    identifier_hash = keyed_hash(normalize_identifier(identifier, method), purpose="identifier")
    link, _ = CrossDeviceLink.objects.get_or_create(
        site_id=session.site_id, identifier_hash=identifier_hash, defaults={"method": method}
    )
    # Identified before under another identifier: that unified journey loses these sessions.
    previous = set(
        visitor.sessions.exclude(cross_device_link=None)
        .exclude(cross_device_link=link)
        .values_list("cross_device_link_id", flat=True)
    )
    JourneySession.objects.filter(visitor=visitor).update(cross_device_link=link)
    visitor.user_key = identifier_hash
    visitor.save(update_fields=["user_key"])
    _refresh_device_sequence(link)
    for stale in CrossDeviceLink.objects.filter(pk__in=previous):
        _refresh_device_sequence(stale)
    session_ids = list(link.sessions.order_by("started_at", "pk").values_list("session_id", flat=True))
    return UnifiedJourney(link=link, session_ids=session_ids)


def _visitor_traces(visitor: Visitor) -> tuple[list[str], Q]:
    session_ids = list(visitor.sessions.values_list("session_id", flat=True))
    mentions = Q(raw_payload__visitor_id=visitor.visitor_id) | Q(raw_payload__session_id__in=session_ids)
    return session_ids, mentions


def visitor_export(*, visitor: Visitor) -> dict:
    """Everything held about a visitor, as JSON-ready data."""
    session_ids, mentions = _visitor_traces(visitor)
    sessions = []
    for session in visitor.sessions.order_by("started_at").prefetch_related(
        "touchpoints", "transitions", "conversions"
    ):
        sessions.append(
            {
                "session_id": session.session_id,
                "device_type": session.device_type,
                "device_screen": session.device_screen,
                "source": session.source,
                "returning": session.returning,
                "started_at": session.started_at,
                "ended_at": session.ended_at,
                "current_stage": session.current_stage,
                "journey_path": session.journey_path,
                "automated": session.automated,
                "persona": {"type": session.persona_type, "confidence": session.persona_confidence},
                "conversion_probability": session.conversion_probability,
                "entry_point": session.entry_point,
                "utm": session.utm,
                "referrer": session.referrer,
                "intent_signals": session.intent_signals,
                "engagement": session.engagement,
                "exit_point": session.exit_point,
                "metadata": session.metadata,
                "unified_journey_id": (
                    str(session.cross_device_link.unified_journey_id) if session.cross_device_link else None
                ),
                "transitions": [
                    {
                        "from": t.from_stage,
                        "to": t.to_stage,
                        "trigger_event": t.trigger_event,
                        "engagement": t.engagement,
                        "at": t.created_at,
                    }
                    for t in session.transitions.all()
                ],
                "touchpoints": [
                    {
                        "event_id": str(t.event_id),
                        "sequence": t.sequence,
                        "type": t.type,
                        "page_url": t.page_url,
                        "page_title": t.page_title,
                        "interaction_type": t.interaction_type,
                        "interaction_data": t.interaction_data,
                        "engagement_score": t.engagement_score,
                        "duration_seconds": t.duration_seconds,
                        "scroll_depth": t.scroll_depth,
                        "click_count": t.click_count,
                        "conversion_value": str(t.conversion_value),
                        "device_context": t.device_context,
                        "timestamp": t.client_timestamp,
                        "received_at": t.received_at,
                    }
                    for t in sorted(session.touchpoints.all(), key=lambda t: t.sequence)
                ],
                "conversions": [
                    {
                        "event_id": str(c.event_id),
                        "type": c.type,
                        "value": str(c.value),
                        "currency": c.currency,
                        "funnel_step": c.funnel_step,
                        "product": c.product,
                        "attribution": c.attribution,
                        "at": c.converted_at,
                    }
                    for c in session.conversions.all()
                ],
            }
        )
    return {
        "visitor_id": visitor.visitor_id,
        "consent": {
            "personalization": visitor.consent_personalization,
            "personalization_at": visitor.consent_personalization_at,
            "cross_device": visitor.consent_cross_device,
            "cross_device_at": visitor.consent_cross_device_at,
        },
        "persona": {"type": visitor.persona, "confidence": visitor.persona_confidence},
        "persona_history": [
            {
                "from": c.from_persona,
                "to": c.to_persona,
                "confidence": c.confidence,
                "source": c.source,
                "at": c.changed_at,
            }
            for c in visitor.persona_changes.all()
        ],
        "scarcity_sensitivity": visitor.scarcity_sensitivity,
        "has_cross_device_identity": bool(visitor.user_key),
        "first_seen_at": visitor.first_seen_at,
        "last_seen_at": visitor.last_seen_at,
        "sessions": sessions,
        "quarantined_events": [
            {
                "endpoint": q.endpoint,
                "reason": q.reason,
                "raw_payload": q.raw_payload,
                "received_at": q.received_at,
            }
            for q in QuarantinedEvent.objects.filter(site_id=visitor.site_id).filter(mentions)
        ],
        "idempotency_conflicts": [
            {
                "kind": c.kind,
                "client_id": c.client_id,
                "received_payload": c.received_payload,
                "at": c.received_at,
            }
            for c in IdempotencyConflict.objects.filter(site_id=visitor.site_id).filter(
                mentions_conflict(visitor, session_ids)
            )
        ],
    }


def mentions_conflict(visitor: Visitor, session_ids: list[str]) -> Q:
    return Q(received_payload__visitor_id=visitor.visitor_id) | Q(received_payload__session_id__in=session_ids)


@transaction.atomic
def visitor_erase(*, visitor: Visitor) -> None:
    """Delete everything held about a visitor: sessions and all that hangs off them,
    quarantined payloads and conflict logs that name them, and unified journeys left
    empty. Rollups (later) keep only aggregates, which name no one."""
    session_ids, mentions = _visitor_traces(visitor)
    links = set(visitor.sessions.exclude(cross_device_link=None).values_list("cross_device_link_id", flat=True))
    QuarantinedEvent.objects.filter(site_id=visitor.site_id).filter(mentions).delete()
    IdempotencyConflict.objects.filter(site_id=visitor.site_id).filter(mentions_conflict(visitor, session_ids)).delete()
    visitor.delete()
    for link in CrossDeviceLink.objects.filter(pk__in=links):
        _refresh_device_sequence(link)
