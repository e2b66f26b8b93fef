"""The dashboards' rollup tables, kept equal to a recompute from raw rows.

What is rolled up
-----------------
Every rollup row is keyed by ``(site, day, ...)`` where ``day`` is the UTC day the
session started (``analytics.models``). A session's later stage moves, conversions,
exposures, cues and personalizations count on that day too. So every fact in a rollup
belongs to exactly one ``(site, day)`` key: the key of its session.

How the rollups stay exact: dirty keys, recomputed whole
--------------------------------------------------------
Sessions change after they start (furthest stage, late conversions, a cross-device
link, erasure), and a personalization record is updated when engagement comes in. An
"add the new rows to the counters" scheme would have to undo old contributions; we
recompute instead. The unit of work is one ``(site, day)`` key:

1. *Marking.* Statement-level triggers on the session table and on every table the
   rollups read (transitions, conversions, exposures, personalization records, holdout
   memberships, the claims ledger) append the ``(site, start day)`` of every session a
   statement inserted, updated or deleted into ``analytics_rollupdirtyday``, inside the
   writer's transaction (migration ``0003_rollup_triggers``). A mark therefore becomes
   visible exactly when its change does: there is no id or clock watermark, so ids
   committed out of order, long transactions and clock skew cannot make a change slip
   past the rollups, and no safety lag is needed. The marks table has no unique key:
   writers only append and never wait on each other.

2. *Consuming.* One run is one transaction: take a transaction-level advisory lock
   (a second concurrent run returns at once; a later one finds the marks gone), then
   ``DELETE ... RETURNING`` the visible marks, then for the distinct keys delete every
   rollup row and insert the aggregates recomputed from raw rows. Statements later in
   the run see at least what the ``DELETE`` saw (READ COMMITTED takes a newer snapshot
   per statement), and a change committed after the ``DELETE`` left its own mark, which
   the next run consumes. If the run dies anywhere (exception, killed worker, lost
   connection), the transaction rolls back: marks and rollups are as before, and the
   next run does the same work again. So each fact is counted exactly once - in the
   one recompute of its key that last committed - and a run is safe to repeat.

The cost of a run is proportional to the sessions of the dirty keys (usually today's
and yesterday's per active site), not to the history.

The hot statements (a decision's write, a stage move) write several raw tables at once,
all for one session: they append their one mark themselves (:data:`SELF_MARKING_CTE`)
and the triggers skip that statement, instead of every table's trigger appending the
same mark (migration ``0004_rollup_marks_by_writer``).

Sessions of crawlers and headless browsers (``JourneySession.automated``) are counted
in :class:`AutomatedSessionDaily` only; every other table leaves them out, with their
transitions, conversions, exposures and cues (:func:`journeys.selectors.human_sessions`),
unless ``AUTOMATED_SESSIONS_EXCLUDED`` is off. Changing that setting changes what later
runs write; ``rollups_recompute`` rebuilds the past with it.

Raw touchpoints are not read at all (a session's ``total_touchpoints`` is), so the
retention purge (``analytics.retention``) cannot change any rollup, now or in a later
recompute of an old day, and it marks nothing dirty.

:func:`rollups_recompute` rebuilds a range of keys from raw with the same SQL; the
tests compare it with what the incremental runs left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection, transaction
from django.utils import timezone

from analytics.models import (
    AutomatedSessionDaily,
    PersonalizationDaily,
    RollupDirtyDay,
    RollupRun,
    ScarcityRuleDaily,
    SessionDaily,
    StageFlowDaily,
    VariantDaily,
)
from journeys.selectors import human_sessions_sql

# A statement that writes rows of one session marks the session's key itself, once,
# and the raw tables' triggers skip it (migration ``0004_rollup_marks_by_writer``).
MARKED_SETTING = "analytics.rollup_marked_at"
SELF_MARKING_CTE = f"""rollup_marked AS (
    INSERT INTO {RollupDirtyDay._meta.db_table} (site_id, day)
    SELECT s.site_id, (s.started_at AT TIME ZONE 'UTC')::date FROM journeys_journeysession s
    WHERE s.id = %(session)s::bigint AND set_config('{MARKED_SETTING}', statement_timestamp()::text, true) IS NOT NULL
)"""

RUN_HISTORY = timedelta(days=7)
RUN_WORK_MEM = "64MB"
ROLLUP_LOCK = 0x524F4C4C5550  # "ROLLUP": one rollup writer at a time
ROLLUP_MODELS = [SessionDaily, StageFlowDaily, VariantDaily, ScarcityRuleDaily, PersonalizationDaily]
ALL_ROLLUP_MODELS = [AutomatedSessionDaily, *ROLLUP_MODELS]
DIMENSIONS = "s.site_id, s.day, s.journey_path, s.device_type, s.persona"


class RollupInterrupted(Exception):
    """Raised by the test hook ``interrupt_after`` inside a run's transaction."""


@dataclass(frozen=True)
class RollupResult:
    ran: bool
    keys: int = 0
    seconds: float = 0.0


# Left over only when an enclosing transaction (a test's) outlived an earlier run.
DROP_TEMP_SQL = "DROP TABLE IF EXISTS pg_temp.rollup_keys, pg_temp.rollup_sessions"

# The session slice of the keys being recomputed, materialized once per run.
SESSIONS_SQL = """
CREATE TEMP TABLE rollup_sessions ON COMMIT DROP AS
SELECT s.id, s.site_id, k.day, s.journey_path, s.device_type, s.persona_type AS persona, s.returning,
       s.cross_device_link_id, s.total_touchpoints, s.max_stage, s.started_at, s.automated
FROM rollup_keys k
JOIN journeys_journeysession s
  ON s.site_id = k.site_id
 AND s.started_at >= (k.day::timestamp AT TIME ZONE 'UTC')
 AND s.started_at < ((k.day + 1)::timestamp AT TIME ZONE 'UTC');
CREATE INDEX ON rollup_sessions (id);
ANALYZE rollup_sessions;
"""

# The automated sessions of the keys, counted apart before the other tables leave them out.
AUTOMATED_SQL = f"""
INSERT INTO {AutomatedSessionDaily._meta.db_table} (
    site_id, day, journey_path, device_type, persona, reason, sessions)
SELECT {DIMENSIONS}, s.automated, count(*)
FROM rollup_sessions s
WHERE s.automated <> ''
GROUP BY {DIMENSIONS}, s.automated
"""

# Per rollup table: the INSERT ... SELECT that recomputes its rows for rollup_sessions.
RECOMPUTE_SQL = {
    SessionDaily: f"""
WITH conv AS (
    SELECT c.session_id, count(*) AS n, sum(c.value) AS value, min(c.converted_at) AS first_at
    FROM journeys_conversionevent c
    WHERE c.session_id IN (SELECT id FROM rollup_sessions)
    GROUP BY c.session_id
), per_session AS (
    SELECT s.*, conv.n, conv.value,
           CASE WHEN conv.first_at IS NOT NULL
                THEN GREATEST(0, floor(extract(epoch FROM conv.first_at - s.started_at)))::bigint END AS ttc
    FROM rollup_sessions s LEFT JOIN conv ON conv.session_id = s.id
)
INSERT INTO analytics_sessiondaily (
    site_id, day, journey_path, device_type, persona, sessions, returning_sessions, cross_device_sessions,
    touchpoints, max_awareness, max_consideration, max_decision, max_conversion, max_retention,
    converted_sessions, conversions, revenue, ttc_seconds_sum, ttc_count,
    ttc_under_1_min, ttc_1_to_10_min, ttc_10_to_60_min, ttc_1_to_24_h, ttc_over_24_h)
SELECT {DIMENSIONS},
       count(*), count(*) FILTER (WHERE s.returning), count(*) FILTER (WHERE s.cross_device_link_id IS NOT NULL),
       coalesce(sum(s.total_touchpoints), 0),
       count(*) FILTER (WHERE s.max_stage = 'awareness'), count(*) FILTER (WHERE s.max_stage = 'consideration'),
       count(*) FILTER (WHERE s.max_stage = 'decision'), count(*) FILTER (WHERE s.max_stage = 'conversion'),
       count(*) FILTER (WHERE s.max_stage = 'retention'),
       count(s.n), coalesce(sum(s.n), 0), coalesce(sum(s.value), 0),
       coalesce(sum(s.ttc), 0), count(s.ttc),
       count(*) FILTER (WHERE s.ttc < 60), count(*) FILTER (WHERE s.ttc >= 60 AND s.ttc < 600),
       count(*) FILTER (WHERE s.ttc >= 600 AND s.ttc < 3600), count(*) FILTER (WHERE s.ttc >= 3600 AND s.ttc < 86400),
       count(*) FILTER (WHERE s.ttc >= 86400)
FROM per_session s
GROUP BY {DIMENSIONS}
""",
    StageFlowDaily: f"""
INSERT INTO analytics_stageflowdaily (
    site_id, day, journey_path, device_type, persona, from_stage, to_stage, transitions, sessions)
SELECT {DIMENSIONS}, t.from_stage, t.to_stage, count(*), count(DISTINCT s.id)
FROM rollup_sessions s
-- per session through the session_id index: a day's sessions have a few moves each, and a
-- hash join would read every transition ever recorded (OFFSET 0 keeps the planner from
-- flattening the subquery back into that join)
CROSS JOIN LATERAL (
    SELECT tr.from_stage, tr.to_stage FROM journeys_stagetransition tr WHERE tr.session_id = s.id OFFSET 0
) t
GROUP BY {DIMENSIONS}, t.from_stage, t.to_stage
""",
    VariantDaily: f"""
INSERT INTO analytics_variantdaily (
    site_id, day, experiment_id, variant_id, journey_path, device_type, persona, exposures, conversions, revenue)
SELECT s.site_id, s.day, e.experiment_id, e.variant_id, s.journey_path, s.device_type, s.persona,
       count(*), count(*) FILTER (WHERE after.n > 0), coalesce(sum(after.value), 0)
FROM rollup_sessions s
JOIN personalization_exposure e ON e.session_id = s.id
CROSS JOIN LATERAL (
    SELECT count(*) AS n, sum(c.value) AS value FROM journeys_conversionevent c
    WHERE c.session_id = e.session_id AND c.converted_at >= e.exposed_at
) after
GROUP BY {DIMENSIONS}, e.experiment_id, e.variant_id
""",
    ScarcityRuleDaily: f"""
WITH shown AS (
    SELECT {DIMENSIONS}, cl.rule_id, count(*) AS impressions, count(DISTINCT cl.session_id) AS sessions_shown
    FROM rollup_sessions s JOIN personalization_claimledger cl ON cl.session_id = s.id
    GROUP BY {DIMENSIONS}, cl.rule_id
), members AS (
    SELECT {DIMENSIONS}, h.rule_id,
           count(*) FILTER (WHERE NOT h.in_holdout) AS exposed_sessions,
           count(*) FILTER (WHERE NOT h.in_holdout AND converted.yes) AS exposed_conversions,
           count(*) FILTER (WHERE h.in_holdout) AS holdout_sessions,
           count(*) FILTER (WHERE h.in_holdout AND converted.yes) AS holdout_conversions
    FROM rollup_sessions s
    JOIN personalization_holdoutmembership h ON h.session_id = s.id
    CROSS JOIN LATERAL (
        SELECT EXISTS (
            SELECT 1 FROM journeys_conversionevent c
            WHERE c.session_id = h.session_id AND c.converted_at >= h.assigned_at
        ) AS yes
    ) converted
    GROUP BY {DIMENSIONS}, h.rule_id
)
INSERT INTO analytics_scarcityruledaily (
    site_id, day, rule_id, journey_path, device_type, persona, impressions, sessions_shown,
    exposed_sessions, exposed_conversions, holdout_sessions, holdout_conversions)
SELECT site_id, day, rule_id, journey_path, device_type, persona,
       coalesce(shown.impressions, 0), coalesce(shown.sessions_shown, 0),
       coalesce(members.exposed_sessions, 0), coalesce(members.exposed_conversions, 0),
       coalesce(members.holdout_sessions, 0), coalesce(members.holdout_conversions, 0)
FROM shown FULL JOIN members USING (site_id, day, journey_path, device_type, persona, rule_id)
""",
    PersonalizationDaily: f"""
INSERT INTO analytics_personalizationdaily (
    site_id, day, personalization_type, strategy, journey_path, device_type, persona,
    applications, engagement_time, conversions, confidence_sum, confidence_count)
SELECT s.site_id, s.day, p.personalization_type, p.strategy, s.journey_path, s.device_type, s.persona,
       count(*), coalesce(sum(p.engagement_time), 0), count(*) FILTER (WHERE p.conversion_attributed),
       coalesce(round(sum(p.confidence::numeric), 6), 0), count(p.confidence)
FROM rollup_sessions s JOIN personalization_personalizationrecord p ON p.session_id = s.id
GROUP BY {DIMENSIONS}, p.personalization_type, p.strategy
""",
}


def _recompute_keys(cursor, *, interrupt_after: type | None = None) -> int:
    """Replace the rollup rows of the keys in ``rollup_keys`` with a recompute from raw.

    The key table is analyzed first (a temporary table has no statistics, and without
    them the planner read every session instead of the day's through the index: 4.5 s
    instead of 0.3 s for a day of 33,000 sessions), and the run's sorts get memory enough
    not to spill to disk.
    """
    cursor.execute("ANALYZE rollup_keys")
    cursor.execute(f"SET LOCAL work_mem = '{RUN_WORK_MEM}'")
    cursor.execute("SELECT count(*) FROM rollup_keys")
    keys = cursor.fetchone()[0]
    if not keys:
        return 0
    cursor.execute(SESSIONS_SQL)
    for model in ALL_ROLLUP_MODELS:
        table = model._meta.db_table
        cursor.execute(f"DELETE FROM {table} r USING rollup_keys k WHERE r.site_id = k.site_id AND r.day = k.day")
        if model is AutomatedSessionDaily:
            cursor.execute(AUTOMATED_SQL)
            # Every table after it counts only the sessions a person started.
            cursor.execute(f"DELETE FROM rollup_sessions WHERE NOT ({human_sessions_sql('id')})")
            continue
        cursor.execute(RECOMPUTE_SQL[model])
        if model is interrupt_after:
            raise RollupInterrupted(f"interrupted after {table} (test hook)")
    return keys


def rollups_update(*, interrupt_after: type | None = None) -> RollupResult:
    """Consume the dirty marks and recompute their keys: one transaction, one writer.

    Returns ``ran=False`` when another run holds the lock (it will see the same marks).
    ``interrupt_after`` is a test hook: a rollup model after whose recompute the run
    raises :class:`RollupInterrupted` inside its transaction, as a killed worker would
    stop, with part of the work written and nothing committed.
    """
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROLLUP_LOCK])
        if not cursor.fetchone()[0]:
            return RollupResult(ran=False)
        cursor.execute(DROP_TEMP_SQL)
        cursor.execute(
            f"CREATE TEMP TABLE rollup_keys ON COMMIT DROP AS "
            f"WITH consumed AS (DELETE FROM {RollupDirtyDay._meta.db_table} RETURNING site_id, day) "
            "SELECT DISTINCT site_id, day FROM consumed"
        )
        keys = _recompute_keys(cursor, interrupt_after=interrupt_after)
        seconds = time.monotonic() - started
        if keys:
            now = timezone.now()
            RollupRun.objects.create(keys=keys, seconds=seconds, finished_at=now)
            RollupRun.objects.filter(finished_at__lt=now - RUN_HISTORY).delete()
    return RollupResult(ran=True, keys=keys, seconds=seconds)


def rollups_recompute(
    *, site_id: int | None = None, date_from: date | None = None, date_to: date | None = None
) -> RollupResult:
    """Rebuild every rollup key in the range from raw rows (waits for a running update).

    The keys are those with sessions plus those with rollup rows (so rows of deleted
    sessions go too). Dirty marks are left alone: a later update recomputes those keys
    once more, to the same result.
    """
    started = time.monotonic()
    conditions, params = ["TRUE"], []
    if site_id is not None:
        conditions.append("site_id = %s")
        params.append(site_id)
    if date_from is not None:
        conditions.append("day >= %s")
        params.append(date_from)
    if date_to is not None:
        conditions.append("day <= %s")
        params.append(date_to)
    where = " AND ".join(conditions)
    sources = [
        "SELECT DISTINCT site_id, (started_at AT TIME ZONE 'UTC')::date AS day FROM journeys_journeysession",
        *(f"SELECT DISTINCT site_id, day FROM {model._meta.db_table}" for model in ALL_ROLLUP_MODELS),
    ]
    union = " UNION ".join(f"SELECT site_id, day FROM ({source}) x WHERE {where}" for source in sources)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK])
        cursor.execute(DROP_TEMP_SQL)
        cursor.execute(f"CREATE TEMP TABLE rollup_keys ON COMMIT DROP AS {union}", params * len(sources))
        keys = _recompute_keys(cursor)
    return RollupResult(ran=True, keys=keys, seconds=time.monotonic() - started)
