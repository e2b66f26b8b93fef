"""The decision path: the cues a session may be shown now, and the claims ledger's rows.

:func:`cues_eligible` reads rules and evidence from in-process caches (versioned in
Redis, refreshed within 0.5 s of a change) and never runs a counting query; the
decision writes what it shows with :data:`CUE_WRITE_CTES`, in its one statement.
Every cue shown is written to the claims ledger with its exact text and evidence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from core import hooks
from journeys.models import JourneySession
from personalization.models import ClaimLedger, HoldoutMembership, TriggerType
from personalization.selectors import live_config_for
from personalization.services.scarcity.claims import Claim, Verdict, cue_validate, eligibility_refusal, viewer_for
from personalization.services.scarcity.config import as_iso, live_rules_for
from personalization.services.scarcity.evidence import live_evidence

# The cue part of a decision's one write statement (``personalization.decisions``): the
# CTEs record the holdout memberships of the eligible rules not recorded yet (with their
# hashed side), keep a membership recorded before (a session keeps its side even when
# the rule's holdout share changes later), and write the ledger row of every rule whose
# session is not held out. ``cue_shown`` returns the rules shown. The ledger row commits
# with the decision, before the answer that shows the cue is sent. The rows come as one
# JSON document (:func:`cue_write_params`), so the text is the same for any number of cues.
# They come through the statement's ``held`` CTE (the session's visitor, held against
# erasure: :mod:`journeys.visitor_lock`), so nothing is written for an erased session.
CUE_WRITE_CTES = f"""
cue_wanted AS (
    SELECT t.* FROM held, jsonb_to_recordset(%(cues)s::jsonb) AS t(
        rule_id bigint, in_holdout boolean, bucket float8, rule_version integer, trigger_type text, text text,
        evidence jsonb, measured_at timestamptz, ends_at timestamptz)
), cue_inserted AS (
    INSERT INTO {HoldoutMembership._meta.db_table} (rule_id, session_id, in_holdout, bucket, assigned_at)
    SELECT rule_id, %(session)s::bigint, in_holdout, bucket, %(now)s::timestamptz FROM cue_wanted
    ON CONFLICT (rule_id, session_id) DO NOTHING
    RETURNING rule_id, in_holdout
), cue_membership AS (
    SELECT rule_id, in_holdout FROM cue_inserted
    UNION ALL
    SELECT m.rule_id, m.in_holdout FROM {HoldoutMembership._meta.db_table} m
    WHERE m.session_id = %(session)s::bigint AND m.rule_id IN (SELECT rule_id FROM cue_wanted)
), cue_shown AS (
    INSERT INTO {ClaimLedger._meta.db_table}
        (session_id, rule_id, rule_version, trigger_type, text, evidence, evidence_measured_at, ends_at, shown_at)
    SELECT %(session)s::bigint, w.rule_id, w.rule_version, w.trigger_type, w.text, w.evidence, w.measured_at, w.ends_at,
        %(now)s::timestamptz
    FROM cue_wanted w LEFT JOIN cue_membership ms ON ms.rule_id = w.rule_id
    WHERE NOT COALESCE(ms.in_holdout, w.in_holdout)
    RETURNING rule_id
)"""


def cue_write_params(verdicts: list[Verdict]) -> dict:
    """The parameters of :data:`CUE_WRITE_CTES` for the eligible ``verdicts``.

    One JSON text: psycopg adapts a handful of arrays element by element, which cost
    more Python time than the statement takes in the database.
    """
    rows = [
        {
            "rule_id": v.rule.id,
            "in_holdout": not v.shown,
            "bucket": v.bucket,
            "rule_version": v.rule.version,
            "trigger_type": v.rule.trigger_type,
            "text": v.claim.text,
            "evidence": _evidence_out(v.claim),
            "measured_at": as_iso(v.claim.measured_at),
            "ends_at": as_iso(v.claim.ends_at),
        }
        for v in verdicts
    ]
    return {"cues": json.dumps(rows)}


def _evidence_out(claim: Claim) -> dict:
    return {**claim.values, "measured_at": as_iso(claim.measured_at), "computed_at": as_iso(claim.computed_at)}


def cue_out(verdict: Verdict) -> dict:
    rule, claim = verdict.rule, verdict.claim
    return {
        "rule": rule.key,
        "trigger_type": rule.trigger_type,
        "message": claim.text,
        "evidence": _evidence_out(claim),
        "ends_at": as_iso(claim.ends_at),
        "offer": rule.offer.sku,
        "intensity": rule.intensity,
        "timing": rule.timing,
    }


def cues_eligible(*, session: JourneySession, now: datetime) -> list[Verdict]:
    """The cues that may show ``session`` now, before its holdout side is looked up.

    Reads rules and evidence from the in-process caches (no query, no Redis read) and
    writes nothing; the decision records what it shows with :data:`CUE_WRITE_CTES`.
    A site without live rules costs nothing.
    """
    rules = live_rules_for(session.site_id)
    if not rules:
        return []
    viewer = viewer_for(session)
    targeted = [rule for rule in rules if eligibility_refusal(rule, viewer) is None]
    if not targeted:
        return []
    evidence = live_evidence.get()
    variants = (
        live_config_for(session.site_id).variants
        if any(rule.trigger_type == TriggerType.EXCLUSIVITY for rule in targeted)
        else None
    )
    return [
        verdict
        for verdict in (
            cue_validate(rule, evidence.get(rule.id), viewer, now=now, variants=variants) for rule in targeted
        )
        if verdict.eligible
    ]


def cues_shown(
    *, session: JourneySession, eligible: list[Verdict], recorded: Iterable[int], now: datetime
) -> list[dict]:
    """The answer's cues: the eligible ones whose ledger rows were written (``recorded``
    rule ids), announced on the live monitor."""
    recorded = set(recorded)
    shown = [verdict for verdict in eligible if verdict.rule.id in recorded]
    hooks.feed("cues_shown", session=session, verdicts=shown, at=now)
    return [cue_out(verdict) for verdict in shown]


def cues_before(session: JourneySession, at: datetime) -> dict:
    """Attribution: the cues a session was shown before ``at``, one entry per rule."""
    rows = (
        ClaimLedger.objects.filter(session=session, shown_at__lte=at).select_related("rule").order_by("shown_at", "id")
    )
    seen: dict[int, dict] = {}
    for row in rows:
        entry = seen.setdefault(
            row.rule_id,
            {
                "rule": row.rule.key,
                "trigger_type": row.trigger_type,
                "first_shown_at": row.shown_at.isoformat(),
                "times": 0,
            },
        )
        entry.update(text=row.text, rule_version=row.rule_version, last_shown_at=row.shown_at.isoformat())
        entry["times"] += 1
    return {"scarcity": list(seen.values())}
