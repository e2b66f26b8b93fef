"""The visitor's scarcity sensitivity: how it is read on the decision path, and learned.

:func:`sensitivity_for` is what a rule's minimum sensitivity and intensity floor are
compared with; :func:`scarcity_sensitivity_learn` (a worker) moves it toward how the
visitor responded to the cues they were shown.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from journeys.models import ConversionEvent, JourneyPath, JourneySession, Visitor
from personalization.models import ClaimLedger

# Visitor scarcity sensitivity (see sensitivity_for and scarcity_sensitivity_learn).
DEFAULT_SENSITIVITY = 0.5
LEARNING_RATE = 0.2
RESPONSE_HOURS = 24
# Persona boosts from the original notes: time-limited offers are aimed at
# TechEarlyAdopters and StudentHustlers, and a fast decision maker (here: a session on
# the mobile fast track) gets +0.2.
PERSONA_BOOSTS = {"TechEarlyAdopter": 0.1, "StudentHustler": 0.1}
FAST_DECISION_PATHS = {JourneyPath.MOBILE_TIKTOK_FAST_TRACK: 0.2}


def sensitivity_for(*, consent: bool, learned: float, persona: str, path: str) -> float:
    """The visitor's scarcity sensitivity in [0, 1].

    Without personalization consent: :data:`DEFAULT_SENSITIVITY`, nothing behavioural.
    With it: the learned value (:func:`scarcity_sensitivity_learn`) plus the persona
    boosts of the notes (:data:`PERSONA_BOOSTS`, :data:`FAST_DECISION_PATHS`), capped at 1.
    """
    if not consent:
        return DEFAULT_SENSITIVITY
    return min(1.0, learned + PERSONA_BOOSTS.get(persona, 0.0) + FAST_DECISION_PATHS.get(path, 0.0))


def scarcity_sensitivity_learn(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Learn each visitor's scarcity sensitivity from how they responded to cues.

    A session's response is known once it ended, or ``RESPONSE_HOURS`` after its first
    cue: 1 when it converted (a type in ``CONVERSION_STAGE_TYPES``) after its first
    cue, else 0. The visitor's sensitivity moves toward it by an exponential moving
    average, ``s <- s + LEARNING_RATE * (response - s)`` (one step per session, in
    session order), so it stays in [0, 1] and recent sessions weigh most. Only
    visitors with personalization consent learn; without it the ledger rows are
    marked as scored and nothing about the visitor changes. Returns the sessions scored.

    Safe to run twice at once: one transaction first claims up to ``limit`` visitors
    with pending responses (``FOR NO KEY UPDATE SKIP LOCKED``: a concurrent run skips
    them), then reads their pending claims, so a run that claims a visitor after another
    committed finds nothing left to score. Each session moves its visitor exactly one
    step. The visitor is locked before its claims, in the order an erasure locks them
    (:mod:`journeys.visitor_lock`), and the lock does not block the visitor's traffic.
    """
    now = now or timezone.now()
    responded_by = Q(session__ended_at__isnull=False) | Q(shown_at__lt=now - timedelta(hours=RESPONSE_HOURS))
    pending = ClaimLedger.objects.filter(scored_at__isnull=True).filter(responded_by)
    with transaction.atomic():
        claimed = list(
            Visitor.objects.filter(pk__in=pending.values("session__visitor_id"))
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
            .select_for_update(no_key=True, skip_locked=True)
        )
        if not claimed:
            return 0
        firsts = dict(
            pending.filter(session__visitor_id__in=claimed)
            .values("session_id")
            .annotate(first=Min("shown_at"))
            .values_list("session_id", "first")
        )
        if not firsts:
            return 0
        conversions = ConversionEvent.objects.filter(
            session_id__in=list(firsts), type__in=settings.CONVERSION_STAGE_TYPES
        ).values_list("session_id", "converted_at")
        responded = {session_id for session_id, at in conversions if at >= firsts[session_id]}
        visitors = {
            visitor.pk: visitor
            for visitor in Visitor.objects.filter(pk__in=claimed, consent_personalization=True).only(
                "scarcity_sensitivity"
            )
        }
        sessions = JourneySession.objects.filter(pk__in=list(firsts)).order_by("started_at", "id")
        for session_id, visitor_id in sessions.values_list("pk", "visitor_id"):
            visitor = visitors.get(visitor_id)
            if visitor is None:
                continue
            response = 1.0 if session_id in responded else 0.0
            learned = visitor.scarcity_sensitivity + LEARNING_RATE * (response - visitor.scarcity_sensitivity)
            visitor.scarcity_sensitivity = min(1.0, max(0.0, learned))
        Visitor.objects.bulk_update(list(visitors.values()), ["scarcity_sensitivity"])
        ClaimLedger.objects.filter(session_id__in=list(firsts), scored_at__isnull=True).update(scored_at=now)
    return len(firsts)
