"""The decision engine: what each slot shows a session, and the records that it did.

Per requested slot:
1. With a live experiment on the slot and personalization consent, the visitor is in
   the test when ``bucket("traffic")`` < traffic share (for mutually exclusive
   experiments: when the slot's ``bucket("exclusion")`` is in the experiment's range,
   :func:`experiment_for`); the arm is the visitor's sticky assignment if there is one
   (and its arm is not paused), else the weight bucket of ``bucket("arm")`` - a hash of
   experiment key and visitor id, so every process gives the same answer - and the
   assignment is recorded.
2. Otherwise, when an experiment on the slot ended with a declared winner: the winner,
   for every visitor (consent or not: it uses no behavioural data).
3. Otherwise, with consent: among the live variants whose targeting matches the
   session, the one whose strategy is the path-and-stage strategy, else the most
   specifically targeted match, else the slot's default.
4. Without personalization consent: the experiment's control (the visitor is not
   counted in the experiment) or the slot's default; no behavioural data is used.

New assignments, exposures (first per session and variant), personalization records and
the claims of the decision's scarcity cues are written by one statement
(:func:`decision_write_sql`): atomic, one round trip, and ``ON CONFLICT`` makes a
repeated decision record nothing new. Configuration comes from the in-process cache
(:mod:`personalization.selectors`), never from per-request queries.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core import hooks
from core.db import prepared_cursor
from journeys import intelligence
from journeys.models import JourneySession, Visitor
from journeys.services.privacy import VisitorErased
from journeys.visitor_lock import gate_sql
from personalization.models import Exposure
from personalization.selectors import (
    ExperimentConfig,
    SiteConfig,
    VariantConfig,
    live_config_for,
    strategy_for,
)
from personalization.services.scarcity.claims import Verdict
from personalization.services.scarcity.cues import CUE_WRITE_CTES, cue_write_params, cues_eligible, cues_shown

MODEL_VERSION = "rules-v1"


class UnknownSlots(Exception):
    def __init__(self, slots: Sequence[str]) -> None:
        super().__init__(", ".join(slots))
        self.slots = list(slots)


def bucket(experiment_key: str, visitor_id: str, salt: str) -> float:
    """A uniform number in [0, 1) from the experiment key and visitor id."""
    digest = hashlib.sha256(f"{experiment_key}:{salt}:{visitor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def arm_for_bucket(experiment: ExperimentConfig, value: float) -> int:
    """The variant whose cumulative weight interval holds ``value``."""
    total = sum(arm.weight for arm in experiment.arms)
    if total <= 0:
        return experiment.control.variant_id
    edge = 0.0
    for arm in experiment.arms:
        edge += arm.weight / total
        if value < edge:
            return arm.variant_id
    return experiment.arms[-1].variant_id


@dataclass(frozen=True)
class SlotChoice:
    slot: str
    variant: VariantConfig | None
    experiment: ExperimentConfig | None
    strategy: str
    reason: str


def _choose_by_targeting(
    variants: list[VariantConfig], session: JourneySession, strategy: str
) -> tuple[VariantConfig | None, str]:
    matching = [
        v
        for v in variants
        if not v.is_default
        and v.matches(
            path=session.journey_path,
            stage=session.current_stage,
            device=session.device_type,
            persona=session.persona_type,
            returning=session.returning,
        )
    ]
    for variant in matching:
        if variant.strategy == strategy:
            return variant, "strategy"
    if matching:
        return matching[0], "targeting"
    return _default(variants), "default"


def _default(variants: list[VariantConfig]) -> VariantConfig | None:
    return next((v for v in variants if v.is_default), None)


@dataclass(frozen=True)
class NewAssignment:
    experiment_id: int
    variant_id: int
    bucket: float


ASSIGNMENTS_SQL = (
    "SELECT experiment_id, variant_id FROM personalization_assignment WHERE visitor_id = %s AND experiment_id = ANY(%s)"
)


def _assignments(
    session: JourneySession, experiments: list[ExperimentConfig], existing: Mapping[int, int] | None
) -> tuple[dict[int, int], list[NewAssignment]]:
    """Sticky arms: recorded assignments, and new ones by hash (written by :func:`_write`)."""
    if not experiments:
        return {}, []
    if existing is None:
        with connection.cursor() as cursor:
            cursor.execute(ASSIGNMENTS_SQL, [session.visitor_id, [e.id for e in experiments]])
            existing = dict(cursor.fetchall())
    chosen: dict[int, int] = {}
    new: list[NewAssignment] = []
    for experiment in experiments:
        arm_ids = {arm.variant_id for arm in experiment.arms}
        variant_id = existing.get(experiment.id)
        if variant_id not in arm_ids:  # new visitor, or their arm was paused
            value = bucket(experiment.key, session.visitor.visitor_id, "arm")
            variant_id = arm_for_bucket(experiment, value)
            new.append(NewAssignment(experiment.id, variant_id, value))
        chosen[experiment.id] = variant_id
    return chosen, new


def experiment_for(running: Sequence[ExperimentConfig], slot: str, visitor_id: str) -> ExperimentConfig | None:
    """The running experiment of the slot whose traffic holds the visitor, if any.

    A mutually exclusive experiment holds the visitors whose slot hash falls in its
    range, so no visitor is in two of them; another holds those whose own traffic hash
    is under its share (the services let only one such experiment run on a slot).
    """
    exclusion = None
    for experiment in running:
        if experiment.exclusion_start is None:
            if bucket(experiment.key, visitor_id, "traffic") < experiment.traffic_share:
                return experiment
            continue
        if exclusion is None:
            exclusion = bucket(slot, visitor_id, "exclusion")
        if experiment.exclusion_start <= exclusion < experiment.exclusion_start + experiment.traffic_share:
            return experiment
    return None


def choose(
    session: JourneySession, slots: Sequence[str], config: SiteConfig, *, assigned: Mapping[int, int] | None = None
) -> tuple[list[SlotChoice], list[NewAssignment]]:
    """The variant of each slot, and the assignments this decision makes.

    Per slot: the visitor's arm when they are in a running experiment (personalization
    consent only); else a declared winner, which serves to everyone; else without
    consent the experiment's control or the slot's default; else targeting.
    """
    consent = session.visitor.consent_personalization
    visitor_id = session.visitor.visitor_id
    strategy = strategy_for(session.journey_path, session.current_stage)
    held = {slot: experiment_for(config.experiments.get(slot, ()), slot, visitor_id) for slot in slots}
    in_test = [experiment for experiment in held.values() if consent and experiment is not None]
    arms, new = _assignments(session, in_test, assigned)
    choices = []
    for slot in slots:
        variants = config.slots.get(slot, [])
        experiment = held[slot]
        winner = config.winners.get(slot)
        if experiment is not None and experiment.id in arms:
            variant = config.variants[arms[experiment.id]]
            choices.append(SlotChoice(slot, variant, experiment, variant.strategy or strategy, "experiment"))
        elif winner is not None:
            variant = config.variants[winner.variant_id]
            choices.append(SlotChoice(slot, variant, None, "experiment_winner", "winner"))
        elif not consent:
            running = experiment or next(iter(config.experiments.get(slot, ())), None)
            variant = config.variants[running.control.variant_id] if running else _default(variants)
            choices.append(SlotChoice(slot, variant, None, "default", "no_consent"))
        else:
            variant, reason = _choose_by_targeting(variants, session, strategy)
            choices.append(SlotChoice(slot, variant, None, strategy, reason))
    return choices, new


def _offer_active(offer, now: datetime) -> bool:
    starts = parse_datetime(offer.starts_at) if offer.starts_at else None
    ends = parse_datetime(offer.ends_at) if offer.ends_at else None
    return (starts is None or starts <= now) and (ends is None or now < ends)


# One statement writes everything a decision records: new assignments, exposures,
# personalization records, and the holdout memberships and ledger rows of its cues.
# Run outside a transaction it is one round trip and one commit (one WAL flush); inside
# a caller's (a stage update) it joins it. ``ON CONFLICT`` makes a repeated decision
# record nothing new. Rows as JSON documents: the text is the same for any decision.
# It marks the session's rollup key itself (the rollup owner's CTE: core.hooks.rollup_mark_cte).
# Every row comes through ``held``, the visitor held against erasure before anything is
# inserted (journeys.visitor_lock): for a visitor erased since the session was read it
# writes nothing, and says so in its second column.
@functools.cache
def decision_write_sql() -> str:
    return f"""
WITH held AS (
    SELECT v.id FROM {Visitor._meta.db_table} v, LATERAL {gate_sql("v.visitor_id")} AS gate
    WHERE v.id = %(visitor)s::bigint FOR KEY SHARE OF v
), assigned AS (
    INSERT INTO personalization_assignment (experiment_id, visitor_id, variant_id, bucket, assigned_at)
    SELECT t.experiment, held.id, t.variant, t.bucket, %(now)s::timestamptz
    FROM held, jsonb_to_recordset(%(assignments)s::jsonb) AS t(experiment bigint, variant bigint, bucket float8)
    ON CONFLICT (experiment_id, visitor_id) DO UPDATE SET variant_id = EXCLUDED.variant_id, bucket = EXCLUDED.bucket
), exposed AS (
    INSERT INTO personalization_exposure (session_id, variant_id, experiment_id, variant_version, exposed_at)
    SELECT %(session)s::bigint, t.variant, t.experiment, t.version, %(now)s::timestamptz
    FROM held, jsonb_to_recordset(%(shown)s::jsonb) AS t(variant bigint, experiment bigint, version integer)
    ON CONFLICT (session_id, variant_id) DO NOTHING
), recorded AS (
    INSERT INTO personalization_personalizationrecord (
        session_id, personalization_type, strategy, variant_id, content_delivered, user_response,
        engagement_time, conversion_attributed, model_version, confidence, created_at
    )
    SELECT %(session)s::bigint, 'content', t.strategy, t.variant, t.content, '{{}}'::jsonb, 0, false, t.model,
        %(confidence)s::float8, %(now)s::timestamptz
    FROM held, jsonb_to_recordset(%(shown)s::jsonb) AS t(strategy text, variant bigint, content jsonb, model text)
    ON CONFLICT (session_id, variant_id) WHERE variant_id IS NOT NULL DO NOTHING
), {CUE_WRITE_CTES}, {hooks.rollup_mark_cte()}
SELECT array(SELECT rule_id FROM cue_shown), EXISTS (SELECT FROM held)
"""


def _write(
    session: JourneySession,
    choices: list[SlotChoice],
    new: list[NewAssignment],
    cues: list[Verdict],
    now: datetime,
) -> list[int]:
    """Record the decision (:func:`decision_write_sql`); the rules whose cues were shown.

    :class:`VisitorErased` (nothing written) when the session's visitor was erased
    since the session was read.

    The rows go as JSON documents: psycopg adapts arrays element by element, which cost
    more Python time than the statement takes in the database.
    """
    shown = [choice for choice in choices if choice.variant is not None]
    if not shown and not new and not cues:
        return []
    params = {
        "visitor": session.visitor_id,
        "session": session.pk,
        "now": now,
        "confidence": session.persona_confidence,
        "assignments": json.dumps(
            [{"experiment": a.experiment_id, "variant": a.variant_id, "bucket": a.bucket} for a in new]
        ),
        "shown": json.dumps(
            [
                {
                    "variant": c.variant.id,
                    "experiment": c.experiment.id if c.experiment else None,
                    "version": c.variant.version,
                    "strategy": c.strategy,
                    "content": {"slot": c.slot, "variant": c.variant.key, "version": c.variant.version},
                    "model": c.experiment.key if c.experiment else MODEL_VERSION,
                }
                for c in shown
            ]
        ),
        **cue_write_params(cues),
    }
    with prepared_cursor() as cursor:
        cursor.execute(decision_write_sql(), params)
        shown_rules, visitor_held = cursor.fetchone()
    if not visitor_held:
        raise VisitorErased(session_id=session.session_id)
    return shown_rules


def optimization_opportunities(session: JourneySession) -> list[dict]:
    """Per-session opportunities (PRODUCT.md section 5); applied only above 0.7 confidence.

    Confidence is 0.9 when the number the rule reads was measured in this session (an
    engagement report from the client), and 0.5 when it is a prior: a rule acting on a
    guess is listed but not applied.
    """
    engagement = session.engagement or {}
    measured = "engagement_score" in engagement
    score = float(engagement.get("engagement_score", 0.5))
    confidence = 0.9 if measured else 0.5
    found = []
    if score < 0.5:
        found.append(
            {"type": "more_interaction_prompts", "reason": f"engagement {score:.2f} < 0.5", "confidence": confidence}
        )
    if session.current_stage == "decision" and session.conversion_probability < 0.3:
        found.append(
            {
                "type": "urgency_cue_eligible",
                "reason": f"conversion probability {session.conversion_probability:.2f} < 0.3 in decision",
                "confidence": 0.9,
            }
        )
    if score < 0.6 and session.visitor.consent_personalization:
        found.append(
            {"type": "deeper_personalization", "reason": f"engagement {score:.2f} < 0.6", "confidence": confidence}
        )
    for item in found:
        item["applied"] = item["confidence"] > 0.7
    return found


def decide(
    *,
    session: JourneySession,
    slots: Sequence[str] | None = None,
    context: dict | None = None,
    strict: bool = True,
    assigned: Mapping[int, int] | None = None,
    now: datetime | None = None,
) -> dict:
    """The ``/decide`` answer for ``slots`` (all of the site's slots when None); records exposures.

    ``assigned`` is the visitor's recorded arms (experiment id -> variant id) when the
    caller read them with the session (:func:`personalization.selectors.decision_session_for`);
    otherwise they are read here.

    Unknown slot keys raise :class:`UnknownSlots` when ``strict``; otherwise (the first
    decision of a session start, whose session is already stored) they are listed in
    ``unknown_slots`` of the answer.
    """
    now = now or timezone.now()
    config = live_config_for(session.site_id)
    requested = list(dict.fromkeys(slots)) if slots is not None else sorted(config.slot_keys)
    unknown = [slot for slot in requested if slot not in config.slot_keys]
    if unknown and strict:
        raise UnknownSlots(unknown)
    requested = [slot for slot in requested if slot in config.slot_keys]
    choices, new = choose(session, requested, config, assigned=assigned)
    eligible = cues_eligible(session=session, now=now)
    recorded = _write(session, choices, new, eligible, now)
    cues = cues_shown(session=session, eligible=eligible, recorded=recorded, now=now)
    out_slots = {}
    for choice in choices:
        variant = choice.variant
        if variant is None:
            out_slots[choice.slot] = None
            continue
        entry = {
            "variant": variant.key,
            "version": variant.version,
            "content": variant.payload,
            "experiment": choice.experiment.key if choice.experiment else None,
            "strategy": choice.strategy,
            "reason": choice.reason,
            "offer": variant.offer.as_dict() if variant.offer and _offer_active(variant.offer, now) else None,
        }
        out_slots[choice.slot] = entry
    answer = {
        "session_id": session.session_id,
        "slots": out_slots,
        "scarcity": cues,
        "recommendations": optimization_opportunities(session),
        "layout_hints": intelligence.layout_hints(device_type=session.device_type, stage=session.current_stage),
        "next_best_action": intelligence.next_best_action(
            intent=session.intent_signals if session.visitor.consent_personalization else {},
            stage=session.current_stage,
            conversion_probability=session.conversion_probability,
        ),
    }
    if unknown:
        answer["unknown_slots"] = unknown
    # A browser's clock may be off: countdowns to ``ends_at`` correct it by this.
    answer["server_time"] = now.isoformat()
    return answer


def exposures_before(session: JourneySession, at: datetime) -> dict:
    """Attribution: the variants and offers a session was shown before ``at``."""
    rows = (
        Exposure.objects.filter(session=session, exposed_at__lte=at)
        .select_related("variant", "variant__offer", "experiment")
        .order_by("exposed_at", "id")
    )
    variants, offers = [], []
    for exposure in rows:
        variants.append(
            {
                "variant": exposure.variant.key,
                "version": exposure.variant_version,
                "experiment": exposure.experiment.key if exposure.experiment else None,
                "exposed_at": exposure.exposed_at.isoformat(),
            }
        )
        offer = exposure.variant.offer
        if offer is not None and offer.sku not in [o["sku"] for o in offers]:
            offers.append({"sku": offer.sku, "name": offer.name})
    return {"variants": variants, "offers": offers}
