"""The dashboards' numbers: one function per chart, ``(filters) -> Table``, from rollups only.

Every function reads the rollup tables of :mod:`analytics.models` (never raw events),
so a page costs the same at ten thousand sessions as at ten million. The dashboard
pages, their CSV exports and ``GET /api/v1/analytics/...`` all call these functions,
so they show the same numbers.

Conventions, the same in every table:

- ``day`` is the UTC day a session started; a session's stage moves, conversions,
  exposures, cues and personalizations count on that day (see ``analytics.models``).
- ``conversions`` counts converted *sessions* unless a column says otherwise;
  ``conversion_rate`` is ``conversions / sessions`` (or per exposure), ``None`` when the
  denominator is 0. On the overview (tiles, daily series, paths) a converted session
  is one that reached the ``conversion`` stage, the funnel's conversion row
  (:data:`CONVERSION_DEFINITION`), so tiles and funnel agree; elsewhere it is a session
  with at least one conversion event (or of the goal named).
- ``revenue`` is a ``Decimal``, the sum of conversion values as recorded.
- Sessions of crawlers and headless browsers are left out of every table but
  :func:`automated_sessions` (``analytics.rollups``).
- Filters: ``date_from``/``date_to`` inclusive, then site, device, path and persona
  when given. A persona of ``""`` means "no persona assigned".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum

from analytics.filters import Filters
from analytics.models import (
    AutomatedSessionDaily,
    PersonalizationDaily,
    ScarcityRuleDaily,
    SessionDaily,
    StageFlowDaily,
    VariantDaily,
)
from analytics.tables import Table
from core import statistics
from journeys.models import ConversionEvent, Stage
from personalization.models import ScarcityRule

STAGES = [stage.value for stage in Stage]
START = "start"
TTC_BUCKETS = ["under_1_min", "1_to_10_min", "10_to_60_min", "1_to_24_h", "over_24_h"]
SCARCITY_FIELDS = [
    "impressions",
    "sessions_shown",
    "exposed_sessions",
    "exposed_conversions",
    "holdout_sessions",
    "holdout_conversions",
]
LIFT_FIELDS = list(statistics.holdout_lift(statistics.Arm(0, 0), statistics.Arm(0, 0)))
# The overview's converted sessions: those whose furthest stage is conversion or later.
REACHED_CONVERSION = ["max_conversion", "max_retention"]


def conversion_definition() -> str:
    """What the overview's conversion rate counts, in the words its tiles and funnel carry."""
    types = " or ".join(t.replace("_", " ") for t in settings.CONVERSION_STAGE_TYPES)
    return f"sessions that reached the conversion stage (a {types}) ÷ all sessions"


def rollup_filter(filters: Filters) -> Q:
    """The filters as a condition on any rollup table (they share the dimension columns)."""
    condition = Q(day__gte=filters.date_from, day__lte=filters.date_to)
    if filters.site_id is not None:
        condition &= Q(site_id=filters.site_id)
    if filters.device:
        condition &= Q(device_type=filters.device)
    if filters.path:
        condition &= Q(journey_path=filters.path)
    if filters.persona is not None:
        condition &= Q(persona=filters.persona)
    return condition


def ratio(numerator, denominator) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


def _sums(model, filters: Filters, group_by: list[str], fields: list[str]) -> list[dict]:
    rows = (
        model.objects.filter(rollup_filter(filters))
        .values(*group_by)
        .annotate(**{field: Sum(field) for field in fields})
        .order_by(*group_by)
    )
    return list(rows)


def _money(value) -> Decimal:
    return (value or Decimal("0")).quantize(Decimal("0.01"))


def overview_totals(filters: Filters) -> Table:
    """One row for the KPI tiles.

    Columns: ``sessions``, ``conversions`` (sessions that reached the conversion stage),
    ``conversion_rate`` (:func:`conversion_definition`), ``sessions_with_any_conversion``
    (any conversion event, e.g. an e-mail signup), ``conversion_events``, ``revenue``,
    ``currency`` (:func:`revenue_currency`), ``revenue_per_session``, ``cross_device_share``.
    """
    fields = ["sessions", "converted_sessions", "conversions", "revenue", "cross_device_sessions", *REACHED_CONVERSION]
    row = SessionDaily.objects.filter(rollup_filter(filters)).aggregate(**{f: Sum(f) for f in fields})
    sessions = row["sessions"] or 0
    reached = _reached(row)
    revenue = _money(row["revenue"])
    return Table(
        "overview_totals",
        "Totals",
        [
            "sessions",
            "conversions",
            "conversion_rate",
            "sessions_with_any_conversion",
            "conversion_events",
            "revenue",
            "currency",
            "revenue_per_session",
            "cross_device_share",
        ],
        [
            (
                sessions,
                reached,
                ratio(reached, sessions),
                row["converted_sessions"] or 0,
                row["conversions"] or 0,
                revenue,
                revenue_currency(filters),
                ratio(revenue, sessions),
                ratio(row["cross_device_sessions"] or 0, sessions),
            )
        ],
    )


def _reached(row: dict) -> int:
    return sum(row.get(field) or 0 for field in REACHED_CONVERSION)


def revenue_currency(filters: Filters) -> str:
    """The currency of the revenue figures: the currencies of the conversions with a value in
    the range (by conversion time), ``"EUR"`` or ``"EUR+USD"`` when several were summed
    (conversion values are stored as sent, never converted); ``""`` without any. A label:
    it follows the site and the dates, not the device, path and persona filters."""
    since = dt.datetime.combine(filters.date_from, dt.time.min, tzinfo=dt.UTC)
    until = dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    conversions = ConversionEvent.objects.filter(converted_at__gte=since, converted_at__lt=until, value__gt=0)
    if filters.site_id is not None:
        conversions = conversions.filter(site_id=filters.site_id)
    return "+".join(sorted(conversions.values_list("currency", flat=True).distinct()))


def overview_timeseries(filters: Filters) -> Table:
    """Per day of the range (every day, zeros included).

    Columns: ``day``, ``sessions``, ``conversions`` (sessions that reached the conversion
    stage), ``conversion_rate`` (:func:`conversion_definition`), ``revenue``.
    """
    by_day = {
        row["day"]: row for row in _sums(SessionDaily, filters, ["day"], ["sessions", "revenue", *REACHED_CONVERSION])
    }
    rows = []
    for day in filters.days:
        row = by_day.get(day, {})
        sessions, converted = row.get("sessions") or 0, _reached(row)
        rows.append((day, sessions, converted, ratio(converted, sessions), _money(row.get("revenue"))))
    return Table(
        "overview_timeseries",
        "Sessions, conversion and revenue",
        ["day", "sessions", "conversions", "conversion_rate", "revenue"],
        rows,
    )


def funnel(filters: Filters) -> Table:
    """Sessions that reached at least each stage (by their furthest stage).

    Columns: ``stage``, ``sessions_reached``, ``share_of_sessions`` (of all sessions),
    ``drop_off`` (sessions that reached the stage before but not this one; 0 for the
    first), ``drop_off_rate`` (``drop_off`` / the stage before's ``sessions_reached``).
    """
    fields = [f"max_{stage}" for stage in STAGES]
    row = SessionDaily.objects.filter(rollup_filter(filters)).aggregate(**{f: Sum(f) for f in fields})
    at_max = [row[f] or 0 for f in fields]
    total = sum(at_max)
    rows = []
    previous = None
    for index, stage in enumerate(STAGES):
        reached = sum(at_max[index:])
        drop = 0 if previous is None else previous - reached
        rows.append((stage, reached, ratio(reached, total), drop, None if previous is None else ratio(drop, previous)))
        previous = reached
    return Table(
        "funnel",
        "Funnel by stage",
        ["stage", "sessions_reached", "share_of_sessions", "drop_off", "drop_off_rate"],
        rows,
    )


def paths_compared(filters: Filters) -> Table:
    """Per journey path (those with sessions), by sessions descending.

    Columns: ``path``, ``sessions``, ``conversions`` (sessions that reached the conversion
    stage), ``conversion_rate`` (:func:`conversion_definition`), ``revenue``,
    ``revenue_per_session``, ``mean_time_to_convert_seconds`` (to the first conversion event).
    """
    fields = ["sessions", "revenue", "ttc_seconds_sum", "ttc_count", *REACHED_CONVERSION]
    rows = []
    for row in _sums(SessionDaily, filters, ["journey_path"], fields):
        revenue = _money(row["revenue"])
        rows.append(
            (
                row["journey_path"],
                row["sessions"],
                _reached(row),
                ratio(_reached(row), row["sessions"]),
                revenue,
                ratio(revenue, row["sessions"]),
                ratio(row["ttc_seconds_sum"], row["ttc_count"]),
            )
        )
    rows.sort(key=lambda r: (-r[1], r[0]))
    return Table(
        "paths_compared",
        "Journey paths compared",
        [
            "path",
            "sessions",
            "conversions",
            "conversion_rate",
            "revenue",
            "revenue_per_session",
            "mean_time_to_convert_seconds",
        ],
        rows,
    )


def stage_flows(filters: Filters) -> Table:
    """Stage transitions per path, for a Sankey diagram.

    Columns: ``path``, ``from_stage`` (``"start"`` for the session's first stage),
    ``to_stage``, ``count`` (transitions), ``sessions`` (distinct sessions making the
    move, summed over days). Ordered by path, then stage order.
    """
    order = {START: -1, **{stage: index for index, stage in enumerate(STAGES)}}
    rows = [
        (row["journey_path"], row["from_stage"] or START, row["to_stage"], row["transitions"], row["sessions"])
        for row in _sums(
            StageFlowDaily, filters, ["journey_path", "from_stage", "to_stage"], ["transitions", "sessions"]
        )
    ]
    rows.sort(key=lambda r: (r[0], order[r[1]], order[r[2]]))
    return Table("stage_flows", "Stage flows", ["path", "from_stage", "to_stage", "count", "sessions"], rows)


def time_to_convert(filters: Filters) -> Table:
    """Time from session start to its first conversion, per path with conversions.

    Columns: ``path``, ``conversions`` (converted sessions), ``mean_seconds``, then the
    histogram ``under_1_min``, ``1_to_10_min``, ``10_to_60_min``, ``1_to_24_h``,
    ``over_24_h`` (converted sessions per bucket).
    """
    fields = ["ttc_count", "ttc_seconds_sum"] + [f"ttc_{bucket}" for bucket in TTC_BUCKETS]
    rows = [
        (
            row["journey_path"],
            row["ttc_count"],
            ratio(row["ttc_seconds_sum"], row["ttc_count"]),
            *(row[f"ttc_{bucket}"] for bucket in TTC_BUCKETS),
        )
        for row in _sums(SessionDaily, filters, ["journey_path"], fields)
        if row["ttc_count"]
    ]
    return Table("time_to_convert", "Time to convert", ["path", "conversions", "mean_seconds", *TTC_BUCKETS], rows)


def cross_device_share(filters: Filters) -> Table:
    """Per day of the range: sessions linked to a cross-device journey.

    Columns: ``day``, ``sessions``, ``cross_device_sessions``, ``cross_device_share``.
    """
    by_day = {row["day"]: row for row in _sums(SessionDaily, filters, ["day"], ["sessions", "cross_device_sessions"])}
    rows = []
    for day in filters.days:
        row = by_day.get(day, {})
        sessions, linked = row.get("sessions") or 0, row.get("cross_device_sessions") or 0
        rows.append((day, sessions, linked, ratio(linked, sessions)))
    return Table(
        "cross_device_share",
        "Cross-device share",
        ["day", "sessions", "cross_device_sessions", "cross_device_share"],
        rows,
    )


def persona_mix(filters: Filters) -> Table:
    """Per persona (``""`` = none assigned), by sessions descending.

    Columns: ``persona``, ``sessions``, ``share`` (of all sessions), ``conversions``
    (converted sessions), ``conversion_rate``.
    """
    rows = _sums(SessionDaily, filters, ["persona"], ["sessions", "converted_sessions"])
    total = sum(row["sessions"] for row in rows)
    out = [
        (
            row["persona"],
            row["sessions"],
            ratio(row["sessions"], total),
            row["converted_sessions"],
            ratio(row["converted_sessions"], row["sessions"]),
        )
        for row in rows
    ]
    out.sort(key=lambda r: (-r[1], r[0]))
    return Table("persona_mix", "Persona mix", ["persona", "sessions", "share", "conversions", "conversion_rate"], out)


def variant_daily(filters: Filters) -> Table:
    """Per day, experiment and variant: traffic allocation over time.

    Columns: ``day``, ``experiment`` (key, ``""`` for exposures outside an experiment),
    ``variant`` (key), ``exposures`` (exposed sessions), ``allocation_share`` (of the
    experiment's exposures that day), ``conversions`` (exposed sessions converting at
    or after exposure), ``conversion_rate``, ``revenue``. Ordered by day, experiment,
    variant.
    """
    rows = _sums(
        VariantDaily,
        filters,
        ["day", "experiment__key", "variant__key"],
        ["exposures", "conversions", "revenue"],
    )
    per_experiment_day: dict[tuple, int] = defaultdict(int)
    for row in rows:
        per_experiment_day[(row["day"], row["experiment__key"])] += row["exposures"]
    out = [
        (
            row["day"],
            row["experiment__key"] or "",
            row["variant__key"],
            row["exposures"],
            ratio(row["exposures"], per_experiment_day[(row["day"], row["experiment__key"])]),
            row["conversions"],
            ratio(row["conversions"], row["exposures"]),
            _money(row["revenue"]),
        )
        for row in rows
    ]
    out.sort(key=lambda r: (r[0], r[1], r[2]))
    return Table(
        "variant_daily",
        "Traffic allocation over time",
        ["day", "experiment", "variant", "exposures", "allocation_share", "conversions", "conversion_rate", "revenue"],
        out,
    )


def scarcity_rule_daily(filters: Filters) -> Table:
    """Per day and scarcity rule: cues shown, and eligible sessions exposed vs held out.

    Columns: ``day``, ``rule`` (key), ``trigger_type``, ``impressions`` (cues shown),
    ``sessions_shown``, ``exposed_sessions``, ``exposed_conversions``, ``exposed_rate``,
    ``holdout_sessions``, ``holdout_conversions``, ``holdout_rate``, ``lift``
    (``exposed_rate / holdout_rate - 1``, ``None`` when either rate is missing or the
    holdout's is 0). Ordered by day, rule.
    """
    fields = SCARCITY_FIELDS
    out = []
    for row in _sums(ScarcityRuleDaily, filters, ["day", "rule__key", "rule__trigger_type"], fields):
        exposed = ratio(row["exposed_conversions"], row["exposed_sessions"])
        holdout = ratio(row["holdout_conversions"], row["holdout_sessions"])
        out.append(
            (
                row["day"],
                row["rule__key"],
                row["rule__trigger_type"],
                row["impressions"],
                row["sessions_shown"],
                row["exposed_sessions"],
                row["exposed_conversions"],
                exposed,
                row["holdout_sessions"],
                row["holdout_conversions"],
                holdout,
                exposed / holdout - 1 if exposed is not None and holdout else None,
            )
        )
    out.sort(key=lambda r: (r[0], r[1]))
    return Table(
        "scarcity_rule_daily",
        "Scarcity cues per day",
        ["day", "rule", "trigger_type", *fields[:4], "exposed_rate", *fields[4:], "holdout_rate", "lift"],
        out,
    )


SCARCITY_RULE_COLUMNS = [
    "site",
    "rule",
    "trigger_type",
    "offer",
    "status",
    "holdout_share",
    "impressions",
    "sessions_shown",
    "exposed_sessions",
    "exposed_conversions",
    "exposed_rate",
    "holdout_sessions",
    "holdout_conversions",
    "holdout_rate",
    *LIFT_FIELDS,
    "p_value_holm",
]


def scarcity_rules(filters: Filters) -> Table:
    """Per scarcity rule of the sites in the filters: cues shown, and the conversion of
    eligible sessions exposed to the cue against those held out, with the lift.

    The sums of :func:`scarcity_rule_daily` over the range, so every filter applies; the
    lift columns (``relative_lift`` with its intervals, p-value and ``chance_to_beat_holdout``)
    come from :func:`core.statistics.holdout_lift`, as in
    ``GET /api/v1/analytics/scarcity`` (which counts from raw rows, by the time a session
    became eligible rather than the day it started). Rules without data in the range show
    zeros. Ordered by site name, rule key. ``p_value_holm`` is the lift's p-value adjusted
    by Holm over the rules of the same site (read together, as on the page).
    """
    fields = SCARCITY_FIELDS
    sums = {row["rule_id"]: row for row in _sums(ScarcityRuleDaily, filters, ["rule_id"], fields)}
    rules = ScarcityRule.objects.select_related("site", "offer").order_by("site__name", "site_id", "key")
    if filters.site_id is not None:
        rules = rules.filter(site_id=filters.site_id)
    out = []
    for rule in rules:
        row = sums.get(rule.pk, dict.fromkeys(fields, 0))
        exposed = statistics.Arm(row["exposed_sessions"], row["exposed_conversions"])
        holdout = statistics.Arm(row["holdout_sessions"], row["holdout_conversions"])
        lift = statistics.holdout_lift(holdout, exposed)
        out.append(
            (
                rule.site.name,
                rule.key,
                rule.trigger_type,
                rule.offer.sku,
                rule.status,
                (rule.published or {}).get("holdout_share", rule.holdout_share),
                row["impressions"],
                row["sessions_shown"],
                exposed.exposures,
                exposed.conversions,
                exposed.rate,
                holdout.exposures,
                holdout.conversions,
                holdout.rate,
                *(lift[name] for name in LIFT_FIELDS),
            )
        )
    p_index = SCARCITY_RULE_COLUMNS.index("p_value")
    by_site: dict[str, list[int]] = {}
    for index, row in enumerate(out):
        by_site.setdefault(row[0], []).append(index)
    adjusted: dict[int, float] = {}
    for indices in by_site.values():
        adjusted.update(zip(indices, statistics.holm([out[i][p_index] for i in indices]), strict=True))
    out = [(*row, adjusted[index]) for index, row in enumerate(out)]
    return Table("scarcity_rules", "Exposed vs holdout conversion per rule", SCARCITY_RULE_COLUMNS, out)


def personalization_performance(filters: Filters) -> Table:
    """Per personalization type and strategy, by applications descending.

    Columns: ``personalization_type``, ``strategy``, ``applications`` (records),
    ``engagement_time`` (seconds, summed), ``mean_engagement_time``, ``conversions``
    (records with a conversion attributed), ``conversion_rate`` (per application),
    ``mean_confidence`` (over records with a confidence).
    """
    fields = ["applications", "engagement_time", "conversions", "confidence_sum", "confidence_count"]
    out = [
        (
            row["personalization_type"],
            row["strategy"],
            row["applications"],
            row["engagement_time"],
            ratio(row["engagement_time"], row["applications"]),
            row["conversions"],
            ratio(row["conversions"], row["applications"]),
            ratio(row["confidence_sum"], row["confidence_count"]),
        )
        for row in _sums(PersonalizationDaily, filters, ["personalization_type", "strategy"], fields)
    ]
    out.sort(key=lambda r: (-r[2], r[0], r[1]))
    return Table(
        "personalization_performance",
        "Personalization performance",
        [
            "personalization_type",
            "strategy",
            "applications",
            "engagement_time",
            "mean_engagement_time",
            "conversions",
            "conversion_rate",
            "mean_confidence",
        ],
        out,
    )


def automated_sessions(filters: Filters) -> Table:
    """Sessions of crawlers and headless browsers, per reason (``crawler:<name>``,
    ``headless:<name>``, ``webdriver``), by sessions descending: the sessions every other
    table leaves out (unless ``AUTOMATED_SESSIONS_EXCLUDED`` is off).

    Columns: ``reason``, ``sessions``.
    """
    rows = [(row["reason"], row["sessions"]) for row in _sums(AutomatedSessionDaily, filters, ["reason"], ["sessions"])]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return Table("automated_sessions", "Automated sessions", ["reason", "sessions"], rows)


# The tables of each ``GET /api/v1/analytics/<page>`` endpoint, in page order.
PAGES: dict[str, list] = {
    "overview": [overview_totals, overview_timeseries, funnel, paths_compared, automated_sessions],
    "funnel": [funnel],
    "timeseries": [overview_timeseries, cross_device_share],
    "journeys": [stage_flows, paths_compared, time_to_convert, cross_device_share, persona_mix],
    "personalization": [personalization_performance],
    "allocation": [variant_daily],
    "scarcity_daily": [scarcity_rules, scarcity_rule_daily],
}


def page_tables(page: str, filters: Filters) -> list[Table]:
    """Every table of one page (a key of :data:`PAGES`)."""
    return [query(filters) for query in PAGES[page]]
