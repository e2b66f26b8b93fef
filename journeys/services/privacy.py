"""Consent, cross-device identity, and a visitor's right to export and erase."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.hashing import keyed_hash, normalize_identifier
from journeys.models import (
    CrossDeviceLink,
    ErasedSession,
    IdempotencyConflict,
    JourneySession,
    QuarantinedEvent,
    Site,
    Visitor,
)
from journeys.visitor_lock import visitor_gate_pass, visitor_hold


class ConsentRequired(Exception):
    """Cross-device linking was asked for a visitor without cross-device consent."""


class VisitorErased(Exception):
    """The visitor of a session was erased after the session was read: nothing was written.

    A caller answers it as it answers a session that does not exist (the API: 404
    ``session_not_found``), which is what the same request gets a moment later.
    """

    def __init__(self, *, session_id: str) -> None:
        super().__init__(f"the visitor of session {session_id!r} was erased")
        self.session_id = session_id


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
            _sessions_locked(visitor).update(cross_device_link=None)
            for link in CrossDeviceLink.objects.filter(pk__in=links):
                _refresh_device_sequence(link)
            visitor.user_key = ""
            fields.append("user_key")
    if fields:
        visitor.save(update_fields=fields)
    return visitor


@transaction.atomic
def consent_set(*, site: Site, visitor_id: str, personalization: bool | None, cross_device: bool | None) -> Visitor:
    """Record a visitor's consent choices, creating the visitor if it is new.

    A choice that waited for the erasure of its visitor creates a fresh visitor holding
    only this choice (:mod:`journeys.visitor_lock`).
    """
    visitor_gate_pass(visitor_id)
    visitor, _ = Visitor.objects.select_for_update(no_key=True).get_or_create(site=site, visitor_id=visitor_id)
    return consent_apply(visitor=visitor, personalization=personalization, cross_device=cross_device)


def _sessions_locked(visitor: Visitor):
    """The visitor's sessions, locked in id order first, as every writer of several sessions
    locks them (ingestion, :mod:`journeys.visitor_lock`): an ``UPDATE`` of them all would
    lock them in the table's order and could deadlock with a batch of events."""
    ids = list(visitor.sessions.order_by("pk").select_for_update(no_key=True).values_list("pk", flat=True))
    return JourneySession.objects.filter(pk__in=ids)


def _collapse(devices: list[str]) -> list[str]:
    sequence: list[str] = []
    for device in devices:
        if not sequence or sequence[-1] != device:
            sequence.append(device)
    return sequence


def _refresh_device_sequence(link: CrossDeviceLink) -> None:
    """Recompute a unified journey's device sequence; delete it once it has no sessions.

    The link row is locked before its sessions are read, so an erasure emptying it and
    an identify adding to it at once serialize (an identify locks it the same way).
    """
    if not CrossDeviceLink.objects.select_for_update(no_key=True).filter(pk=link.pk).exists():
        return
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
    written. The identifier is stored only as a keyed hash. :class:`VisitorErased` when
    the visitor was erased since the session was read (nothing written).
    """
    if not visitor_hold(session.visitor_id):
        raise VisitorErased(session_id=session.session_id)
    visitor = Visitor.objects.select_for_update(no_key=True).get(pk=session.visitor_id)
    if not visitor.consent_cross_device:
        raise ConsentRequired
    identifier_hash = keyed_hash(normalize_identifier(identifier, method), purpose="identifier")
    link, _ = CrossDeviceLink.objects.select_for_update(no_key=True).get_or_create(
        site_id=session.site_id, identifier_hash=identifier_hash, defaults={"method": method}
    )
    # Identified before under another identifier: that unified journey loses these sessions.
    previous = set(
        visitor.sessions.exclude(cross_device_link=None)
        .exclude(cross_device_link=link)
        .values_list("cross_device_link_id", flat=True)
    )
    _sessions_locked(visitor).update(cross_device_link=link)
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


@transaction.atomic
def visitor_export(*, visitor: Visitor) -> dict | None:
    """Everything held about a visitor, as JSON-ready data; None if it was erased.

    Holds the visitor while it reads, so an erasure waits for the export to finish
    rather than leaving it half the data.
    """
    if not visitor_hold(visitor.pk):
        return None
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


def erased_session_hash(session_id: str) -> str:
    return keyed_hash(session_id, purpose="erased-session")


def sessions_erased(*, site: Site, session_ids: Iterable[str]) -> set[str]:
    """Which of these session ids belonged to an erased visitor (:class:`ErasedSession`)."""
    by_hash = {erased_session_hash(session_id): session_id for session_id in session_ids}
    if not by_hash:
        return set()
    erased = ErasedSession.objects.filter(site=site, session_hash__in=list(by_hash)).values_list(
        "session_hash", flat=True
    )
    return {by_hash[session_hash] for session_hash in erased}


def mentions_conflict(visitor: Visitor, session_ids: list[str]) -> Q:
    return Q(received_payload__visitor_id=visitor.visitor_id) | Q(received_payload__session_id__in=session_ids)


@transaction.atomic
def visitor_erase(*, visitor: Visitor) -> bool:
    """Delete everything held about a visitor: sessions and all that hangs off them
    (touchpoints, stage moves, conversions, and the upper apps' rows: assignments,
    exposures, personalization records, holdouts, the claims ledger), quarantined
    payloads and conflict logs that name them, and unified journeys left empty. The
    erased sessions' ids are kept as keyed hashes (:class:`ErasedSession`), so events a
    page left open still sends for them are refused without being kept.

    Wins every race with the visitor's own traffic (:mod:`journeys.visitor_lock`): it
    passes the visitor's erasure gate exclusively and locks the visitor row ``FOR
    UPDATE`` before reading anything, so it waits for the writers that hold the
    visitor, deletes what they committed, and the writers that come later find it gone.
    False when the visitor was gone already (erased by a concurrent call). Rollups keep
    only aggregates, which name no one; the rows' triggers mark their days for
    recomputation, so the next rollup run no longer counts the visitor.
    """
    visitor_gate_pass(visitor.visitor_id, shared=False)
    visitor = Visitor.objects.select_for_update().filter(pk=visitor.pk).first()
    if visitor is None:
        return False
    session_ids, mentions = _visitor_traces(visitor)
    now = timezone.now()
    ErasedSession.objects.bulk_create(
        [
            ErasedSession(site_id=visitor.site_id, session_hash=erased_session_hash(session_id), erased_at=now)
            for session_id in session_ids
        ],
        ignore_conflicts=True,
    )
    links = set(visitor.sessions.exclude(cross_device_link=None).values_list("cross_device_link_id", flat=True))
    QuarantinedEvent.objects.filter(site_id=visitor.site_id).filter(mentions).delete()
    IdempotencyConflict.objects.filter(site_id=visitor.site_id).filter(mentions_conflict(visitor, session_ids)).delete()
    visitor.delete()
    for link in CrossDeviceLink.objects.filter(pk__in=links).order_by("pk"):
        _refresh_device_sequence(link)
    return True
