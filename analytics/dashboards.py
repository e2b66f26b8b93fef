"""The dashboard pages and their charts: which table each chart plots, and how.

A page is a list of sections, each a list of charts. A chart has a stable key (its DOM
id is ``chart-<key>``, its CSV export ``?format=csv&chart=<key>``), a table built on
demand (an export builds only its own), a figure (:mod:`analytics.charts`) and what to
tell the reader when there is nothing to plot. Tables come from :mod:`analytics.queries`
(rollups); experiment results and scarcity effectiveness come from
:mod:`analytics.reports`, the functions behind the staff API, so page and API agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from analytics import arm_metrics, charts, queries
from analytics.filters import Filters
from analytics.reports import VARIANT_FIELDS, experiment_report
from analytics.tables import Table
from analytics.templatetags import dashboard_numbers
from personalization.models import (
    ApprovalRequest,
    ClaimLedger,
    Experiment,
    MonitorFlag,
    RequestStatus,
    ScarcityRule,
)

NO_SESSIONS = (
    "No sessions in this range yet. Run `make run` (its demo site has 30 days of history) or send events to "
    "POST /api/v1/sessions and POST /api/v1/events, then widen the dates or clear the other filters."
)


def has_rows(table: Table) -> bool:
    return not table.is_empty


def has_sessions(table: Table) -> bool:
    return any(table.column("sessions"))


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    table: Callable[[], Table]
    figure: Callable[[Table], dict]
    empty: str = NO_SESSIONS
    has_data: Callable[[Table], bool] = has_rows
    show_numbers: bool = False

    def rendered(self, *, csv_url: str) -> RenderedChart:
        table = self.table()
        figure = self.figure(table) if self.has_data(table) else None
        return RenderedChart(chart=self, table=table, figure=figure, csv_url=csv_url)


@dataclass(frozen=True)
class RenderedChart:
    chart: Chart
    table: Table
    figure: dict | None
    csv_url: str

    @property
    def key(self) -> str:
        return self.chart.key

    @property
    def dom_id(self) -> str:
        return f"chart-{self.chart.key}"


@dataclass
class Section:
    title: str
    charts: list[Chart]
    intro: str = ""
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    sections: Callable[[Filters], list[Section]]
    intro: str = ""
    empty: str = NO_SESSIONS
    template: str = "analytics/dashboard.html"

    def charts(self, filters: Filters) -> list[Chart]:
        return [chart for section in self.sections(filters) for chart in section.charts]


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _range(filters: Filters) -> tuple[dt.datetime, dt.datetime]:
    return _day_start(filters.date_from), _day_start(filters.date_to + dt.timedelta(days=1))


def _subset(table: Table, *, key: str, title: str, where: str, equals, drop: bool = True) -> Table:
    """The rows of ``table`` whose ``where`` column equals ``equals`` (without that column)."""
    index = table.columns.index(where)
    keep = [i for i in range(len(table.columns)) if not (drop and i == index)]
    return Table(
        key=key,
        title=title,
        columns=[table.columns[i] for i in keep],
        rows=[tuple(row[i] for i in keep) for row in table.rows if row[index] == equals],
    )


T = TypeVar("T")


def _once(build: Callable[[], T]) -> Callable[[], T]:
    """``build`` run at most once, for tables several charts split."""
    memo: list[T] = []

    def table() -> T:
        if not memo:
            memo.append(build())
        return memo[0]

    return table


# --- overview -------------------------------------------------------------------------------


def overview_sections(filters: Filters) -> list[Section]:
    definition = queries.conversion_definition()
    currency = _once(partial(queries.revenue_currency, filters))
    return [
        Section(
            title="",
            intro=f"Conversion rate on this page: {definition}; the funnel's conversion row counts the same "
            "sessions. Revenue: the values of all conversions, in the currency they were recorded in.",
            charts=[
                Chart(
                    "overview-totals",
                    "Totals",
                    partial(queries.overview_totals, filters),
                    partial(charts.totals, definition="reached the conversion stage ÷ sessions"),
                    has_data=has_sessions,
                ),
                Chart(
                    "overview-timeseries",
                    "Sessions, conversion rate and revenue over time",
                    partial(queries.overview_timeseries, filters),
                    lambda table: charts.over_time(table, currency=currency()),
                    has_data=has_sessions,
                ),
                Chart(
                    "overview-funnel",
                    "Funnel by stage: sessions reaching each stage (% of all sessions), with drop-off",
                    partial(queries.funnel, filters),
                    charts.funnel,
                    has_data=lambda table: bool(table.rows) and table.rows[0][1] > 0,
                    show_numbers=True,
                ),
                Chart(
                    "overview-paths",
                    "Journey paths compared (conversion rate: reached the conversion stage ÷ sessions)",
                    partial(queries.paths_compared, filters),
                    charts.paths,
                    show_numbers=True,
                ),
            ],
        ),
        automated_section(filters),
    ]


def automated_section(filters: Filters) -> Section:
    """The sessions of crawlers and headless browsers, apart from the people's."""
    excluded = settings.AUTOMATED_SESSIONS_EXCLUDED
    return Section(
        title="Crawlers and headless browsers",
        intro="Sessions started by a known crawler (its user agent), a headless browser, a browser driven by "
        "automation (navigator.webdriver), or an address flooding the API (over its rate limit). "
        + (
            "They are left out of every other number of the dashboards, of experiment results and of social proof."
            if excluded
            else "AUTOMATED_SESSIONS_EXCLUDED is off: they are counted with everyone else's."
        ),
        charts=[
            Chart(
                "overview-automated",
                "Automated sessions " + ("(excluded)" if excluded else "(included)") + ", per reason",
                partial(queries.automated_sessions, filters),
                partial(charts.automated, excluded=excluded),
                empty="No automated sessions in this range.",
                show_numbers=True,
            )
        ],
    )


# --- journeys -------------------------------------------------------------------------------


def journeys_sections(filters: Filters) -> list[Section]:
    flows = queries.stage_flows(filters)
    paths = list(dict.fromkeys(flows.column("path")))
    flow_charts = [
        Chart(
            f"journeys-flow-{path}",
            f"Stage flows: {path}",
            partial(
                _subset, flows, key=f"journeys-flow-{path}", title=f"Stage flows: {path}", where="path", equals=path
            ),
            charts.sankey,
        )
        for path in paths
    ]
    if not flow_charts:
        flow_charts = [Chart("journeys-flow", "Stage flows", lambda: flows, charts.sankey)]
    return [
        Section(title="Stage flows per path", charts=flow_charts),
        Section(
            title="Conversion timing and reach",
            charts=[
                Chart(
                    "journeys-time-to-convert",
                    "Time to convert (session start to first conversion)",
                    partial(queries.time_to_convert, filters),
                    partial(charts.time_to_convert, buckets=queries.TTC_BUCKETS),
                    empty="No conversions in this range yet: widen the dates or clear the other filters.",
                    show_numbers=True,
                ),
                Chart(
                    "journeys-cross-device",
                    "Cross-device share of sessions",
                    partial(queries.cross_device_share, filters),
                    partial(charts.share_over_time, y="cross_device_share", title="cross-device share"),
                    has_data=has_sessions,
                ),
                Chart(
                    "journeys-personas",
                    "Persona mix",
                    partial(queries.persona_mix, filters),
                    partial(charts.mix, label="persona", value="sessions"),
                    show_numbers=True,
                ),
            ],
        ),
    ]


# --- experiments --------------------------------------------------------------------------


def experiments_in(filters: Filters) -> list[Experiment]:
    """Published experiments that ran at some time in the date range, newest first."""
    since, until = _range(filters)
    experiments = (
        Experiment.objects.select_related("winner", "site")
        .filter(published__isnull=False, started_at__lt=until)
        .exclude(ended_at__lt=since)
        .order_by("-started_at", "key")
    )
    if filters.site_id is not None:
        experiments = experiments.filter(site_id=filters.site_id)
    return list(experiments)


def variants_table(report: dict, *, key: str) -> Table:
    return Table(
        key=key,
        title="Conversion rate by variant",
        columns=list(VARIANT_FIELDS),
        rows=[tuple(variant[name] for name in VARIANT_FIELDS) for variant in report["variants"]],
    )


LIFT_COLUMNS = ["key", "relative_lift", "ci_low", "ci_high", "chance_to_beat_control", "expected_loss", "p_value"]


def lift_table(report: dict, *, key: str) -> Table:
    return Table(
        key=key,
        title="Relative lift of the conversion rate over control, 95% credible interval",
        columns=LIFT_COLUMNS,
        rows=[tuple(v[name] for name in LIFT_COLUMNS) for v in report["variants"] if not v["control"]],
    )


def _approval_links(proposals: list[dict]) -> list[dict]:
    """Each pending proposal with its page in the approvals queue, where an approver decides it."""
    requests = dict(
        ApprovalRequest.objects.filter(
            content_type__app_label="personalization",
            content_type__model="optimizationproposal",
            object_id__in=[proposal["id"] for proposal in proposals],
            status=RequestStatus.PENDING,
        ).values_list("object_id", "pk")
    )
    return [
        {
            **proposal,
            "approval_url": (
                reverse("admin:personalization_approvalrequest_change", args=[requests[proposal["id"]]])
                if proposal["id"] in requests
                else None
            ),
        }
        for proposal in proposals
    ]


def experiments_sections(filters: Filters) -> list[Section]:
    experiments = experiments_in(filters)
    allocation = _once(partial(queries.variant_daily, filters))
    ambiguous = len({e.key for e in experiments}) < len(experiments)
    sections = []
    for experiment in experiments:
        report = experiment_report(experiment=experiment)
        key = f"experiment-{experiment.site_id}-{experiment.key}" if ambiguous else f"experiment-{experiment.key}"
        allocation_key = f"{key}-allocation"
        sections.append(
            Section(
                title=f"{experiment.name} ({experiment.key})",
                intro="Rates, revenue, guardrails, intervals and chances cover the whole experiment (the same "
                f"numbers as GET /api/v1/analytics/experiments/{experiment.key}); the allocation follows the filters.",
                details={
                    "report": report,
                    "site": experiment.site,
                    "proposals": _approval_links(report["proposals"]),
                    "treatments": sum(not v["control"] and not v["paused"] for v in report["variants"]),
                    "admin_url": reverse("admin:personalization_experiment_change", args=[experiment.pk]),
                },
                charts=[
                    Chart(
                        f"{key}-variants",
                        "Conversion rate by variant",
                        partial(variants_table, report, key=f"{key}-variants"),
                        partial(charts.bars, x="key", ys=["rate"], y_title="conversion rate", percent=True),
                        empty="No arms yet: add variants to this experiment in the admin.",
                        show_numbers=True,
                    ),
                    Chart(
                        f"{key}-lift",
                        "Relative lift of the conversion rate over control, 95% credible interval",
                        partial(lift_table, report, key=f"{key}-lift"),
                        partial(
                            charts.interval_bars,
                            x="key",
                            low="ci_low",
                            high="ci_high",
                            y_title="lift of the conversion rate",
                            percent=True,
                        ),
                        empty="No treatment arm to compare with the control yet.",
                    ),
                    Chart(
                        allocation_key,
                        "Traffic allocation over time (share of the day's exposed sessions)",
                        lambda key=allocation_key, experiment=experiment: _subset(
                            allocation(),
                            key=key,
                            title="Traffic allocation over time",
                            where="experiment",
                            equals=experiment.key,
                        ),
                        partial(charts.stacked_by, x="day", y="allocation_share", by="variant", percent=True),
                        empty="No exposures in this range: widen the dates or clear the other filters.",
                    ),
                ],
            )
        )
    return sections


# --- scarcity -------------------------------------------------------------------------------

LEDGER_LIMIT = 50


def claims_table(filters: Filters) -> Table:
    """The latest cues shown in the range, newest first: the exact text and the evidence it stood on."""
    since, until = _range(filters)
    claims = ClaimLedger.objects.filter(shown_at__gte=since, shown_at__lt=until)
    if filters.site_id is not None:
        claims = claims.filter(rule__site_id=filters.site_id)
    if filters.device:
        claims = claims.filter(session__device_type=filters.device)
    if filters.path:
        claims = claims.filter(session__journey_path=filters.path)
    if filters.persona is not None:
        claims = claims.filter(session__persona=filters.persona)
    rows = [
        (
            timezone.localtime(claim.shown_at).isoformat(),
            claim.rule.key,
            claim.trigger_type,
            claim.session.session_id,
            claim.text,
            claim.evidence,
            claim.ends_at.isoformat() if claim.ends_at else None,
        )
        # Newest first by id, not by shown_at: rows are appended as cues are shown, so the
        # order is the same, and the primary key walked backwards stops after the limit
        # where sorting by shown_at would read every row of the range.
        for claim in claims.select_related("rule", "session").order_by("-id")[:LEDGER_LIMIT]
    ]
    return Table(
        key="scarcity-ledger",
        title=f"Claims ledger (latest {LEDGER_LIMIT})",
        columns=["shown_at", "rule", "trigger_type", "session", "text", "evidence", "ends_at"],
        rows=rows,
    )


def monitor_flags_table(filters: Filters) -> Table:
    """Open monitor flags, and flags resolved since the start of the range."""
    flags = MonitorFlag.objects.filter(resolved=False) | MonitorFlag.objects.filter(
        resolved=True, resolved_at__gte=_day_start(filters.date_from)
    )
    if filters.site_id is not None:
        flags = flags.filter(rule__site_id=filters.site_id)
    rows = [
        (
            flag.rule.key,
            flag.kind,
            "resolved" if flag.resolved else "open",
            timezone.localtime(flag.raised_at).isoformat(),
            flag.details,
        )
        for flag in flags.select_related("rule").order_by("resolved", "-raised_at", "-id")
    ]
    return Table(
        key="scarcity-flags",
        title="Monitor flags",
        columns=["rule", "kind", "state", "raised_at", "details"],
        rows=rows,
    )


def rule_guardrails_table(filters: Filters) -> Table:
    """Per scarcity rule and guardrail: sessions shown the cue against the held-out ones,
    eligible in the date range (raw rows, as ``GET /api/v1/analytics/scarcity``)."""
    since, until = _range(filters)
    rules = ScarcityRule.objects.order_by("site__name", "site_id", "key")
    if filters.site_id is not None:
        rules = rules.filter(site_id=filters.site_id)
    keys = dict(rules.values_list("pk", "key"))
    compared = arm_metrics.rules_compared(list(keys), goal="purchase", since=since, until=until)
    rows = []
    for rule_id, key in keys.items():
        holdout, exposed = compared[rule_id]["holdout"]["guardrails"], compared[rule_id]["exposed"]["guardrails"]
        for base, row in zip(holdout, exposed, strict=True):
            if row["value"] is None and base["value"] is None:
                continue
            rows.append(
                (
                    key,
                    row["label"],
                    row["unit"],
                    row["value"],
                    base["value"],
                    row["relative_change"],
                    row["ci_low"],
                    row["ci_high"],
                    row["p_value"],
                    row["worse"],
                )
            )
    return Table(
        key="scarcity-guardrails",
        title="Guardrails per rule: shown vs held out",
        columns=[
            "rule",
            "metric",
            "unit",
            "exposed",
            "holdout",
            "relative_change",
            "ci_low",
            "ci_high",
            "p_value",
            "worse",
        ],
        rows=rows,
    )


def _guardrail_value(column: str) -> Callable[[dict], str]:
    def shown(row: dict) -> str:
        value = row[column]
        return dashboard_numbers.minutes(value) if row["unit"] == "seconds" else dashboard_numbers.percent(value)

    return shown


NO_CUES = (
    "No urgency cues in this range yet. Approve a scarcity rule in the admin and send traffic "
    "(`make run`, or POST /api/v1/decide), then widen the dates."
)


def scarcity_sections(filters: Filters) -> list[Section]:
    return [
        Section(
            title="Effect per rule",
            charts=[
                Chart(
                    "scarcity-rules",
                    "Conversion of exposed vs holdout sessions per rule",
                    partial(queries.scarcity_rules, filters),
                    partial(
                        charts.bars,
                        x="rule",
                        ys=["exposed_rate", "holdout_rate"],
                        y_title="conversion rate",
                        percent=True,
                    ),
                    empty="No scarcity rules yet: create one in the admin and submit it for approval.",
                    show_numbers=True,
                ),
                Chart(
                    "scarcity-impressions",
                    "Cues shown per day and rule",
                    partial(queries.scarcity_rule_daily, filters),
                    partial(charts.lines_by, x="day", y="impressions", by="rule", y_title="cues shown"),
                    empty=NO_CUES,
                ),
            ],
        ),
        Section(
            title="Guardrails per rule",
            intro="Metrics a cue must not make worse, for sessions shown the cue against the held-out ones: "
            "bounce rate (left after one touchpoint without moving on or converting) and refund or cancellation "
            "rate in percent, time to convert (eligibility to first purchase) in minutes. A row in red is "
            "significantly worse (95% confidence interval on the bad side).",
            charts=[
                Chart(
                    "scarcity-guardrails",
                    "Guardrails per rule: shown vs held out (relative change, 95% interval)",
                    partial(rule_guardrails_table, filters),
                    partial(
                        charts.table_figure,
                        highlight="worse",
                        formats={"exposed": _guardrail_value("exposed"), "holdout": _guardrail_value("holdout")},
                    ),
                    empty="No eligible sessions in this range yet: guardrails compare sessions shown a cue "
                    "with held-out ones.",
                )
            ],
        ),
        Section(
            title="Claims ledger and monitor",
            charts=[
                Chart(
                    "scarcity-ledger",
                    "Claims ledger",
                    partial(claims_table, filters),
                    charts.table_figure,
                    empty=NO_CUES,
                ),
                Chart(
                    "scarcity-flags",
                    "Monitor flags",
                    partial(monitor_flags_table, filters),
                    charts.table_figure,
                    empty="No monitor flags: no low-stock cue shown while the stock never moved, "
                    "and no countdown shown after its end.",
                ),
            ],
        ),
    ]


# --- personalization ------------------------------------------------------------------------


def personalization_sections(filters: Filters) -> list[Section]:
    table = _once(partial(queries.personalization_performance, filters))
    empty = (
        "No personalizations in this range yet: decisions (POST /api/v1/decide) record them; "
        "run `make run` or widen the dates."
    )
    label = ["personalization_type", "strategy"]
    return [
        Section(
            title="By type and strategy",
            charts=[
                Chart(
                    "personalization-applications",
                    "Applications and attributed conversions",
                    table,
                    partial(charts.bars, x=label, ys=["applications", "conversions"]),
                    empty=empty,
                    show_numbers=True,
                ),
                Chart(
                    "personalization-engagement",
                    "Mean engagement time (seconds)",
                    table,
                    partial(charts.bars, x=label, ys=["mean_engagement_time"], y_title="seconds"),
                    empty=empty,
                ),
                Chart(
                    "personalization-rates",
                    "Conversion rate and mean confidence",
                    table,
                    partial(charts.bars, x=label, ys=["conversion_rate", "mean_confidence"], percent=True),
                    empty=empty,
                ),
            ],
        )
    ]


PAGES = [
    Page("overview", "Overview", overview_sections, intro="Sessions, conversion and revenue; the funnel; paths."),
    Page(
        "journeys",
        "Journeys",
        journeys_sections,
        intro="How sessions move between stages on each path, how long they take to convert, and who they are.",
    ),
    Page(
        "experiments",
        "Experiments",
        experiments_sections,
        intro="Experiments that ran in the range: variant results, sample-ratio check, allocation, proposals.",
        empty="No experiment ran in this range. Create one in the admin and submit it for approval, "
        "or widen the dates.",
        template="analytics/experiments.html",
    ),
    Page(
        "scarcity",
        "Scarcity",
        scarcity_sections,
        intro="Urgency cues: how often each rule showed, conversion with and without it (holdout), "
        "the claims ledger and the monitor's flags.",
        empty=NO_CUES,
    ),
    Page(
        "personalization",
        "Personalization",
        personalization_sections,
        intro="Personalizations delivered, by type and strategy: applications, engagement, conversions, confidence.",
    ),
]
