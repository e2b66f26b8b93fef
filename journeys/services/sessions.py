"""Session start, stage moves, idle closing."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from core import hooks
from core.db import prepared_cursor
from core.hashing import keyed_hash, payload_hash
from journeys import intelligence
from journeys.automation import FLOOD, automated_reason
from journeys.clients import address_hash
from journeys.models import (
    STAGE_ORDER,
    IdempotencyConflict,
    JourneySession,
    PersonaChange,
    Site,
    StageTransition,
    Touchpoint,
    Visitor,
)
from journeys.selectors import path_rules_for, session_for
from journeys.services.privacy import VisitorErased, consent_apply
from journeys.visitor_lock import visitor_gate_pass, visitor_hold


@dataclass(frozen=True)
class SessionStart:
    """What a client sends to start a session, validated by the API layer."""

    session_id: str
    visitor_id: str
    device_type: str
    device_screen: str = ""
    device_fingerprint: str = ""
    entry_point: Mapping = field(default_factory=dict)
    utm: Mapping = field(default_factory=dict)
    referrer: Mapping = field(default_factory=dict)
    persona_type: str = ""
    persona_confidence: float | None = None
    intent_signals: Mapping[str, float] = field(default_factory=dict)
    returning: bool | None = None
    consent_personalization: bool | None = None
    consent_cross_device: bool | None = None
    metadata: Mapping = field(default_factory=dict)
    raw: Mapping = field(default_factory=dict)
    # Of the call, not of the body: who sent it (journeys.automation, journeys.clients).
    user_agent: str = ""
    webdriver: bool = False
    flooding: bool = False  # the address went over its rate limit lately (journeys.rate_limits)
    client_address: str = ""


@dataclass(frozen=True)
class SessionStartResult:
    session: JourneySession
    created: bool
    conflict: bool


@transaction.atomic
def session_start(*, site: Site, data: SessionStart, now: datetime | None = None) -> SessionStartResult:
    """Start a journey session, or return the existing one for a repeated ``session_id``.

    Idempotent on ``(site, session_id)``: the first write wins; a repeat with the same
    payload returns the stored session, a repeat with a different payload returns it too
    and logs an :class:`IdempotencyConflict`. Two concurrent first writes are resolved by
    the unique constraint: the loser reads the winner's row.

    The visitor is held against erasure until the caller's transaction ends (a caller
    that writes the first decision does it in the same transaction). A start that waited
    for the erasure of its visitor, or names an erased session, starts afresh: a new,
    empty visitor with this session (:mod:`journeys.visitor_lock`).
    """
    request_hash = payload_hash(data.raw)
    existing = session_for(site, data.session_id, hold=True)
    if existing is None:
        try:
            return SessionStartResult(
                _session_create(site=site, data=data, request_hash=request_hash, now=now), True, False
            )
        except IntegrityError:
            # A concurrent first write won; its session, unless erased already (then this one's visitor is new).
            existing = session_for(site, data.session_id, hold=True)
            if existing is None:
                return SessionStartResult(
                    _session_create(site=site, data=data, request_hash=request_hash, now=now), True, False
                )
    conflict = existing.request_hash != request_hash
    if conflict:
        IdempotencyConflict.objects.create(
            site=site,
            kind="session",
            client_id=data.session_id,
            stored_hash=existing.request_hash,
            received_hash=request_hash,
            received_payload=_without_raw_fingerprint(data.raw),
        )
    return SessionStartResult(existing, False, conflict)


def _without_raw_fingerprint(raw: Mapping) -> dict:
    """The request as logged: a fingerprint is kept only as its keyed hash (PRODUCT.md section 8)."""
    payload = dict(raw)
    device = payload.get("device")
    if isinstance(device, Mapping) and device.get("fingerprint"):
        payload["device"] = {**device, "fingerprint": keyed_hash(str(device["fingerprint"]), purpose="fingerprint")}
    return payload


@transaction.atomic
def _session_create(*, site: Site, data: SessionStart, request_hash: str, now: datetime | None) -> JourneySession:
    now = now or timezone.now()
    # Through the visitor's erasure gate, then FOR NO KEY UPDATE: it serializes this
    # visitor's session starts and waits for an erasure of the visitor (after which a
    # fresh visitor is created), not for the writers holding it (journeys.visitor_lock).
    visitor_gate_pass(data.visitor_id)
    visitor, _ = Visitor.objects.select_for_update(no_key=True).get_or_create(site=site, visitor_id=data.visitor_id)
    if data.consent_personalization is not None or data.consent_cross_device is not None:
        consent_apply(
            visitor=visitor,
            personalization=data.consent_personalization,
            cross_device=data.consent_cross_device,
            now=now,
        )
    returning = bool(data.returning) or visitor.session_count > 0
    source = str(data.entry_point.get("source") or data.utm.get("utm_source") or "direct").strip().lower()
    intent = dict(data.intent_signals)

    if data.persona_type:
        persona, confidence, persona_source = data.persona_type, data.persona_confidence, "client"
        if confidence is None:
            confidence = 0.5
    else:
        guess = intelligence.persona_from_signals(
            device_type=data.device_type,
            source=source,
            campaign=str(data.entry_point.get("campaign") or data.utm.get("utm_campaign") or ""),
            intent=intent,
            returning=returning,
        )
        persona, confidence, persona_source = guess.persona, guess.confidence, "rules"

    path = intelligence.path_choose(
        path_rules_for(site.id), device_type=data.device_type, source=source, returning=returning
    )
    probability = hooks.probability_provider(PRIORS).session_start(
        site_id=site.id,
        device=data.device_type,
        source=source,
        path=path,
        persona=persona,
        persona_confidence=confidence,
        returning=returning,
        intent=intent,
        started_at=now,
    )
    session = JourneySession.objects.create(
        site=site,
        visitor=visitor,
        session_id=data.session_id,
        persona_type=persona,
        persona_confidence=confidence,
        persona_source=persona_source,
        device_type=data.device_type,
        device_screen=data.device_screen,
        device_fingerprint_hash=(
            keyed_hash(data.device_fingerprint, purpose="fingerprint") if data.device_fingerprint else ""
        ),
        source=source,
        returning=returning,
        started_at=now,
        last_activity_at=now,
        current_stage="awareness",
        max_stage="awareness",
        journey_path=path,
        conversion_probability=probability,
        entry_point=dict(data.entry_point),
        utm=dict(data.utm),
        referrer=dict(data.referrer),
        intent_signals=intent,
        metadata=dict(data.metadata),
        request_hash=request_hash,
        automated=automated_reason(user_agent=data.user_agent, webdriver=data.webdriver, flooding=data.flooding),
        client_hash=address_hash(data.client_address),
    )
    StageTransition.objects.create(
        session=session,
        from_stage="",
        to_stage="awareness",
        trigger_event="session_start",
        conversion_probability=probability,
    )
    if visitor.persona != persona:
        PersonaChange.objects.create(
            visitor=visitor,
            session=session,
            from_persona=visitor.persona,
            to_persona=persona,
            confidence=confidence,
            source=persona_source,
        )
    visitor.persona = persona
    visitor.persona_confidence = confidence
    visitor.session_count = F("session_count") + 1
    visitor.save(update_fields=["persona", "persona_confidence", "session_count", "last_seen_at"])
    hooks.feed("session_started", session=session)
    return session


def journey_state(session: JourneySession) -> dict:
    """The ``journey_state`` object of the API answers."""
    return {
        "current_stage": session.current_stage,
        "journey_path": session.journey_path,
        "conversion_probability": session.conversion_probability,
        "persona": {"type": session.persona_type, "confidence": session.persona_confidence},
        "next_best_action": intelligence.next_best_action(
            intent=session.intent_signals,
            stage=session.current_stage,
            conversion_probability=session.conversion_probability,
        ),
    }


# A stage move in one round trip: the session's new state and its transition, and the
# session's rollup key marked once (the rollup owner's CTE, :func:`core.hooks.rollup_mark_cte`).
@functools.cache
def stage_move_sql() -> str:
    return f"""
WITH {hooks.rollup_mark_cte()}, moved AS (
    UPDATE {JourneySession._meta.db_table}
    SET current_stage = %(to)s::text, max_stage = %(max_stage)s::text, conversion_probability = %(probability)s::float8,
        engagement = %(engagement)s::jsonb, last_activity_at = %(last_activity)s::timestamptz,
        updated_at = %(now)s::timestamptz
    WHERE id = %(session)s::bigint
)
INSERT INTO {StageTransition._meta.db_table}
    (session_id, from_stage, to_stage, trigger_event, engagement, context, conversion_probability, created_at)
VALUES (
    %(session)s::bigint, %(from)s::text, %(to)s::text, %(trigger)s::text, %(step)s::jsonb, %(context)s::jsonb,
    %(probability)s::float8, %(now)s::timestamptz
)
RETURNING id
"""


class Priors:
    """The documented priors (:func:`journeys.intelligence.conversion_probability_prior`):
    the probabilities served when no trained-model provider is registered."""

    def session_start(self, *, intent: Mapping, returning: bool, **features) -> float:
        return intelligence.conversion_probability_prior(
            stage="awareness", intent=intent, returning=returning, start=True
        )

    def stage_update(self, *, session: JourneySession, stage: str, engagement: Mapping) -> float:
        return intelligence.conversion_probability_prior(
            stage=stage,
            intent=session.intent_signals or {},
            returning=session.returning,
            engagement_score=engagement.get("engagement_score"),
            start=False,
        )


PRIORS = Priors()


@transaction.atomic(savepoint=False)
def stage_advance(
    *,
    session: JourneySession,
    to: str,
    trigger: str = "",
    engagement: Mapping | None = None,
    context: Mapping | None = None,
    now: datetime | None = None,
    locked: bool = False,
) -> JourneySession:
    """Move a session to any of the five stages and record the transition.

    Locks the session row, so two concurrent updates of one session serialize; a
    caller that read ``session`` with its row locked in the current transaction
    (``session_for(..., lock=True)``) says ``locked`` and it is not read again. Moving
    to the stage the session is in is recorded too (the client said it happened).
    Returns the session as it is now, its visitor loaded. The visitor is held against
    erasure before the session is locked; :class:`VisitorErased` if it is gone
    (:mod:`journeys.visitor_lock`).
    """
    now = now or timezone.now()
    if not locked:
        if not visitor_hold(session.visitor_id):
            raise VisitorErased(session_id=session.session_id)
        session = (
            JourneySession.objects.select_for_update(no_key=True, of=("self",))
            .select_related("visitor")
            .get(pk=session.pk)
        )
    engagement = dict(engagement or {})
    context = dict(context or {})
    probability = hooks.probability_provider(PRIORS).stage_update(session=session, stage=to, engagement=engagement)
    from_stage = session.current_stage
    session.current_stage = to
    if STAGE_ORDER[to] > STAGE_ORDER[session.max_stage]:
        session.max_stage = to
    session.conversion_probability = probability
    if engagement:
        session.engagement = {**session.engagement, **engagement}
    session.last_activity_at = max(session.last_activity_at, now)
    session.updated_at = now
    with prepared_cursor() as cursor:
        cursor.execute(
            stage_move_sql(),
            {
                "session": session.pk,
                "from": from_stage,
                "to": to,
                "max_stage": session.max_stage,
                "probability": probability,
                "engagement": json.dumps(session.engagement),
                "last_activity": session.last_activity_at,
                "now": now,
                "trigger": trigger,
                "step": json.dumps(engagement),
                "context": json.dumps(context),
            },
        )
        transition_id = cursor.fetchone()[0]
    transition = StageTransition(
        id=transition_id,
        session=session,
        from_stage=from_stage,
        to_stage=to,
        trigger_event=trigger,
        engagement=engagement,
        context=context,
        conversion_probability=probability,
        created_at=now,
    )
    hooks.feed("stage_changed", transition=transition, session=session)
    return session


def sessions_mark_flood(*, site_id: int, client_hash: str, since: datetime) -> int:
    """Mark the sessions the address ``client_hash`` started on the site since ``since`` as
    automated (``flood``), unless marked already: one UPDATE. Returns how many it marked.

    Their rollup days are marked dirty by the session table's trigger, so the next rollup
    run leaves them out; the optimizer and social proof read the mark as it is.
    """
    if not client_hash:
        return 0
    return JourneySession.objects.filter(
        site_id=site_id, client_hash=client_hash, started_at__gte=since, automated=""
    ).update(automated=FLOOD, updated_at=timezone.now())


# One batch of idle-session closing: pick the oldest idle open sessions, skipping rows a
# concurrent run (or a stage move) holds, and close them in the same statement with their
# last touchpoint's page and type. The statement trigger marks their rollup keys dirty.
_CLOSE_IDLE_BATCH = f"""
WITH picked AS (
    SELECT s.id FROM {JourneySession._meta.db_table} s
    WHERE s.ended_at IS NULL AND s.last_activity_at < %(cutoff)s{{site}}
    ORDER BY s.last_activity_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {JourneySession._meta.db_table} s SET
    ended_at = s.last_activity_at,
    total_session_time = GREATEST(0, trunc(extract(epoch FROM s.last_activity_at - s.started_at)))::integer,
    exit_point = jsonb_build_object(
        'reason', 'idle',
        'stage', s.current_stage,
        'page_url', COALESCE(last.page_url, ''),
        'touchpoint_type', COALESCE(last.type, '')
    )
FROM picked
LEFT JOIN LATERAL (
    SELECT t.page_url, t.type FROM {Touchpoint._meta.db_table} t
    WHERE t.session_id = picked.id ORDER BY t.sequence DESC LIMIT 1
) last ON true
WHERE s.id = picked.id
"""


def sessions_close_idle(
    *,
    now: datetime | None = None,
    idle_minutes: int,
    batch_size: int = 2000,
    budget_seconds: float | None = None,
    on_batch: Callable[[int, float], None] | None = None,
    site_id: int | None = None,
) -> int:
    """Close sessions idle for ``idle_minutes``: end time, session time, exit point.

    The session ends at its last activity; the exit point is the last touchpoint's page
    and type (empty when there is none) and the stage. Work goes in batches of
    ``batch_size``, oldest first, each one set-based statement in its own short
    transaction (``FOR UPDATE SKIP LOCKED``: two concurrent runs close disjoint
    sessions, and a closed session is never selected again, so a run is safe to repeat
    or to kill). With ``budget_seconds`` the run stops after the batch that passes it,
    leaving the rest to the next run. ``on_batch(closed, seconds)`` is told each
    batch's size and transaction time. ``site_id`` limits the run to one site (the
    benchmark's own). Returns how many sessions were closed.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=idle_minutes)
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    sql = _CLOSE_IDLE_BATCH.format(site="" if site_id is None else " AND s.site_id = %(site)s")
    closed = 0
    while True:
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, {"cutoff": cutoff, "limit": batch_size, "site": site_id})
            count = cursor.rowcount
        if on_batch is not None and count:
            on_batch(count, time.perf_counter() - started)
        closed += count
        if count < batch_size or (deadline is not None and time.monotonic() >= deadline):
            return closed
