"""Metrics beyond the conversion rate, per arm: revenue and guardrails, from raw rows.

An *arm* is the set of sessions exposed to one variant of an experiment (from their
first exposure to it), or the exposed or held-out sessions of a scarcity rule (from
when they became eligible). For every arm one SQL statement sums, per session first:

- **revenue**: the values of the session's conversions at or after exposure, in the
  arm's *currency* (the currency most of its unit's valued conversions are in; values
  in other currencies are not added to it, they are counted in ``other_currency_orders``),
  refunds and cancellations left out. Revenue per session is a mean over the arm's
  sessions (sessions without an order count as 0); average order value is revenue over
  *orders* (conversions with a value), a ratio of two per-session means (delta method).
- **bounce rate** (guardrail): share of sessions that left after at most one touchpoint
  without moving past ``awareness`` and without converting (the single-interaction
  session of Universal Analytics).
- **refund or cancellation rate** (guardrail): share of sessions with a conversion of a
  type in :data:`REVERSAL_TYPES` at or after exposure. Conversion types are free text;
  the shop reports a reversed order as one of these.
- **time to convert** (guardrail): seconds from exposure to the session's first
  conversion of the goal, over the sessions that converted (a mean).

Each arm comes back as :class:`ArmSums`: counts, sums and sums of squares (and the
revenue x orders cross sum for the ratio), which is everything a mean, a ratio and
their variances need, so the statistics never see a row.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.db import connection, transaction
from redis.exceptions import RedisError

from core import statistics
from journeys.models import ConversionEvent, JourneySession
from journeys.selectors import human_sessions_sql
from personalization.models import Experiment, ExperimentArm, Exposure, HoldoutMembership

REVERSAL_TYPES = ("refund", "cancellation")
SUMS_CACHE_SECONDS = 60

_CONVERSIONS = ConversionEvent._meta.db_table
_SESSIONS = JourneySession._meta.db_table

# Units: (unit, arm, session_id, since, goal). An exposure row is the first of its session
# and variant, so each session is in an arm once.
EXPERIMENT_UNITS = f"""
SELECT e.experiment_id AS unit, e.variant_id AS arm, e.session_id, e.exposed_at AS since, x.primary_goal AS goal
FROM {Exposure._meta.db_table} e
JOIN {Experiment._meta.db_table} x ON x.id = e.experiment_id
WHERE e.experiment_id = ANY(%(units)s)
"""
# Arm 1: shown the cue when eligible; arm 0: held out.
RULE_UNITS = f"""
SELECT h.rule_id AS unit, CASE WHEN h.in_holdout THEN 0 ELSE 1 END AS arm, h.session_id, h.assigned_at AS since,
       %(goal)s::text AS goal
FROM {HoldoutMembership._meta.db_table} h
WHERE h.rule_id = ANY(%(units)s)
  AND (%(since)s::timestamptz IS NULL OR h.assigned_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR h.assigned_at < %(until)s)
"""

# Per session first, but only for the sessions with a conversion after exposure (a small
# share): the other sessions only count, and count as bounced when quiet (at most one
# touchpoint, still in awareness). A quiet session that converted is not a bounce. Only
# sessions a person started count (journeys.selectors.human_sessions_sql), as in the optimizer.
SUMS_SQL = """
WITH units AS (
    SELECT u.*, s.total_touchpoints <= 1 AND s.max_stage = 'awareness' AS quiet
    FROM ({units}) u JOIN {sessions} s ON s.id = u.session_id
    WHERE {human}
), conv AS (
    SELECT u.unit, u.arm, u.session_id, u.since, u.goal, u.quiet, c.type, c.value, c.currency, c.converted_at,
           c.type = ANY(%(reversals)s) AS reversal
    FROM units u
    JOIN {conversions} c ON c.session_id = u.session_id AND c.converted_at >= u.since
), currency AS (
    SELECT DISTINCT ON (unit) unit, currency
    FROM (SELECT unit, currency, count(*) AS n FROM conv WHERE value > 0 AND NOT reversal GROUP BY unit, currency) t
    ORDER BY unit, n DESC, currency
), per_session AS (
    SELECT c.unit, c.arm, c.session_id,
           coalesce(sum(c.value) FILTER (WHERE NOT c.reversal AND c.currency = m.currency), 0) AS revenue,
           count(*) FILTER (WHERE NOT c.reversal AND c.value > 0 AND c.currency = m.currency) AS orders,
           count(*) FILTER (WHERE NOT c.reversal AND c.value > 0 AND c.currency <> m.currency) AS other_orders,
           bool_or(c.reversal) AS reversed, bool_or(c.quiet) AS quiet,
           extract(epoch FROM min(c.converted_at) FILTER (WHERE c.type = c.goal) - c.since)::float8 AS ttc
    FROM conv c LEFT JOIN currency m ON m.unit = c.unit
    GROUP BY c.unit, c.arm, c.session_id, c.since
), converted AS (
    SELECT p.unit, p.arm,
           sum(p.revenue) AS revenue, sum(p.revenue * p.revenue) AS revenue_squares,
           sum(p.orders)::bigint AS orders, sum(p.orders * p.orders)::bigint AS orders_squares,
           sum(p.revenue * p.orders) AS revenue_orders, sum(p.other_orders)::bigint AS other_orders,
           count(*) FILTER (WHERE p.reversed) AS reversed,
           count(*) FILTER (WHERE p.quiet) AS quiet,
           count(p.ttc) AS ttc_count, coalesce(sum(p.ttc), 0) AS ttc, coalesce(sum(p.ttc * p.ttc), 0) AS ttc_squares
    FROM per_session p
    GROUP BY p.unit, p.arm
), everyone AS (
    SELECT u.unit, u.arm, count(*) AS sessions, count(*) FILTER (WHERE u.quiet) AS quiet
    FROM units u
    GROUP BY u.unit, u.arm
)
SELECT e.unit, e.arm, e.sessions,
       coalesce(c.revenue, 0), coalesce(c.revenue_squares, 0), coalesce(c.orders, 0), coalesce(c.orders_squares, 0),
       coalesce(c.revenue_orders, 0), coalesce(c.other_orders, 0), coalesce(c.reversed, 0),
       e.quiet - coalesce(c.quiet, 0), coalesce(c.ttc_count, 0), coalesce(c.ttc, 0), coalesce(c.ttc_squares, 0),
       m.currency
FROM everyone e
LEFT JOIN converted c ON c.unit = e.unit AND c.arm = e.arm
LEFT JOIN currency m ON m.unit = e.unit
"""


@dataclass(frozen=True)
class ArmSums:
    """One arm's sessions and the sums its metrics need (money in the unit's ``currency``)."""

    sessions: int = 0
    revenue: Decimal = Decimal("0.00")
    revenue_squares: Decimal = Decimal("0")
    orders: int = 0
    orders_squares: int = 0
    revenue_orders: Decimal = Decimal("0")
    other_currency_orders: int = 0
    reversed: int = 0
    bounced: int = 0
    converted: int = 0
    ttc_seconds: float = 0.0
    ttc_seconds_squares: float = 0.0
    currency: str | None = None


def _sums(units_sql: str, params: dict, *, fresh: bool = False) -> dict[int, dict[int, ArmSums]]:
    """The sums per unit and arm; kept :data:`SUMS_CACHE_SECONDS` in the cache unless ``fresh``.

    The query reads every exposed session of its units (about twice the optimizer's count
    query), so pages and the API share one answer for a minute, as fresh as the rollups the
    other dashboards read; the optimizer's guardrail check always asks ``fresh``.
    """
    key = "arm-sums:" + hashlib.sha256(repr((units_sql, sorted(params.items()))).encode()).hexdigest()
    if not fresh:
        cached = _cached(key)
        if cached is not None:
            return cached
    sql = SUMS_SQL.format(
        units=units_sql, conversions=_CONVERSIONS, sessions=_SESSIONS, human=human_sessions_sql("u.session_id")
    )
    out: dict[int, dict[int, ArmSums]] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        # As the optimizer's counts: JIT compilation costs more than this query takes.
        cursor.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)")
        cursor.execute(sql, {"reversals": list(REVERSAL_TYPES), **params})
        for unit, arm, *values in cursor.fetchall():
            out.setdefault(unit, {})[arm] = ArmSums(*values)
    with contextlib.suppress(RedisError):  # Redis down: the answer is still right, only not kept
        cache.set(key, out, SUMS_CACHE_SECONDS)
    return out


def _cached(key: str) -> dict | None:
    try:
        return cache.get(key)
    except RedisError:
        return None


def experiment_arm_sums(experiment_ids: list[int], *, fresh: bool = False) -> dict[int, dict[int, ArmSums]]:
    """Per experiment, per variant id: the sums of its exposed sessions, time to convert to
    the experiment's primary goal (one query)."""
    return _sums(EXPERIMENT_UNITS, {"units": experiment_ids}, fresh=fresh)


def rule_arm_sums(
    rule_ids: list[int], *, goal: str, since: datetime | None = None, until: datetime | None = None
) -> dict[int, dict[int, ArmSums]]:
    """Per scarcity rule: arm 1 the sessions shown the cue, arm 0 the held-out ones (one query).

    Sessions count when they became eligible in ``[since, until)``, as in the scarcity report.
    """
    return _sums(RULE_UNITS, {"units": rule_ids, "goal": goal, "since": since, "until": until})


# --- comparisons ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # "percent", "seconds" or "currency"
    lower_is_better: bool
    summary: Callable[[ArmSums], statistics.Summary]


GUARDRAILS = (
    Metric("bounce_rate", "bounce rate", "percent", True, lambda s: statistics.proportion(s.sessions, s.bounced)),
    Metric(
        "refund_rate",
        "refund or cancellation rate",
        "percent",
        True,
        lambda s: statistics.proportion(s.sessions, s.reversed),
    ),
    Metric(
        "time_to_convert",
        "time to convert",
        "seconds",
        True,
        lambda s: statistics.mean(s.converted, s.ttc_seconds, s.ttc_seconds_squares),
    ),
)
REVENUE_PER_SESSION = Metric(
    "revenue_per_session",
    "revenue per session",
    "currency",
    False,
    lambda s: statistics.mean(s.sessions, float(s.revenue), float(s.revenue_squares)),
)
AVERAGE_ORDER_VALUE = Metric(
    "average_order_value",
    "average order value",
    "currency",
    False,
    lambda s: statistics.ratio(
        s.sessions,
        float(s.revenue),
        float(s.revenue_squares),
        s.orders,
        s.orders_squares,
        float(s.revenue_orders),
    ),
)


def compared(metric: Metric, control: ArmSums | None, arm: ArmSums) -> dict:
    """One metric of one arm: its value, and against the control's (None for the control itself).

    ``relative_change`` is the treatment's value over the control's minus 1, with its
    95% interval and p-value (fixed horizon, :func:`core.statistics.compare`; "not enough
    data" leaves them None and ``p_value`` 1). ``worse`` holds when the change is
    significant and in the metric's bad direction.
    """
    summary = metric.summary(arm)
    out = {
        "metric": metric.key,
        "label": metric.label,
        "unit": metric.unit,
        "value": summary.mean,
        "relative_change": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "enough_data": None,
        "significant": False,
        "worse": False,
    }
    if control is None:
        return out
    comparison = statistics.compare(metric.summary(control), summary)
    change = comparison.relative_lift
    significant = bool(comparison.enough_data and comparison.significant)
    bad = change is not None and (change > 0 if metric.lower_is_better else change < 0)
    out.update(
        relative_change=change,
        ci_low=comparison.ci_low,
        ci_high=comparison.ci_high,
        p_value=comparison.p_value,
        enough_data=comparison.enough_data,
        significant=significant,
        worse=significant and bad,
    )
    return out


def arms_compared(arms: list[tuple[str, ArmSums]]) -> dict[str, dict]:
    """Revenue and guardrails of every arm, the first being the control (or the holdout).

    Per arm key: ``revenue`` (``currency``, ``total`` as a decimal string, ``orders``,
    ``other_currency_orders``, ``per_session`` and ``average_order_value`` as
    :func:`compared`, the per-session one with ``p_value_holm`` over the treatments) and
    ``guardrails`` (a :func:`compared` per :data:`GUARDRAILS`).
    """
    if not arms:
        return {}
    control = arms[0][1]
    out = {}
    for index, (key, sums) in enumerate(arms):
        against = None if index == 0 else control
        out[key] = {
            "revenue": {
                "currency": sums.currency or control.currency,
                "total": str(Decimal(sums.revenue).quantize(Decimal("0.01"))),
                "orders": sums.orders,
                "other_currency_orders": sums.other_currency_orders,
                "per_session": compared(REVENUE_PER_SESSION, against, sums),
                "average_order_value": compared(AVERAGE_ORDER_VALUE, against, sums),
            },
            "guardrails": [compared(metric, against, sums) for metric in GUARDRAILS],
        }
    holm_beside([out[key]["revenue"]["per_session"] for key, _ in arms])
    return out


def worse_guardrails(report_arm: dict) -> list[str]:
    """The labels of an arm's guardrails that are significantly worse than the control's."""
    return [row["label"] for row in report_arm["guardrails"] if row["worse"]]


def experiment_arms_compared(experiment: Experiment) -> dict[str, dict]:
    """:func:`arms_compared` for an experiment's arms (control first), keyed by variant key."""
    arms = list(
        ExperimentArm.objects.filter(experiment=experiment)
        .order_by("-is_control", "id")
        .values_list("variant_id", "variant__key")
    )
    sums = experiment_arm_sums([experiment.pk]).get(experiment.pk, {})
    return arms_compared([(key, sums.get(variant_id, ArmSums())) for variant_id, key in arms])


def guardrails_worse(*, experiment: Experiment, variant_id: int) -> list[str]:
    """The guardrail labels on which the arm of ``variant_id`` is significantly worse than the
    control (:data:`core.hooks.guardrails_worse`, asked by the optimizer before a winner). One query."""
    control = ExperimentArm.objects.filter(experiment=experiment, is_control=True).values_list("variant_id", flat=True)
    sums = experiment_arm_sums([experiment.pk], fresh=True).get(experiment.pk, {})
    baseline, arm = sums.get(next(iter(control), None), ArmSums()), sums.get(variant_id, ArmSums())
    return [metric.label for metric in GUARDRAILS if compared(metric, baseline, arm)["worse"]]


def rules_compared(
    rule_ids: list[int], *, goal: str, since: datetime | None = None, until: datetime | None = None
) -> dict[int, dict]:
    """Per scarcity rule: :func:`arms_compared` of the sessions shown the cue (``exposed``)
    against the held-out ones (``holdout``, the baseline), one query for all rules."""
    sums = rule_arm_sums(rule_ids, goal=goal, since=since, until=until)
    out = {}
    for rule_id in rule_ids:
        arms = sums.get(rule_id, {})
        out[rule_id] = arms_compared([("holdout", arms.get(0, ArmSums())), ("exposed", arms.get(1, ArmSums()))])
    return out


def holm_beside(rows: list[dict], *, source: str = "p_value", target: str = "p_value_holm") -> None:
    """Write ``target``, the Holm adjustment of ``source`` over the rows that have one, into each row
    (None where ``source`` is None, i.e. the control). A comparison without enough data
    counts with its p-value of 1, as the optimizer's Holm over the treatments does."""
    read = [row for row in rows if row.get(source) is not None]
    for row, adjusted in zip(read, statistics.holm([row[source] for row in read]), strict=True):
        row[target] = adjusted
    for row in rows:
        row.setdefault(target, None)
