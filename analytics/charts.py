"""Plotly figures of dashboard tables: plain functions ``Table -> figure dict``.

A figure plots numbers of its table exactly as the table holds them (the chart's CSV
export is the whole table), as plain JSON lists, so a browser test can read them back
from Plotly's ``gd.data``. Decimals become floats and dates ISO strings; nothing is
rounded here (hover labels format, the data does not).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analytics.tables import Table
from analytics.templatetags.dashboard_numbers import cell

# No Plotly template: the default one would be embedded in every figure (~6 KB each).
LAYOUT = {
    "template": "none",
    "colorway": ["#447e9b", "#e8a33d", "#5aa469", "#c0504d", "#8064a2", "#4bacc6", "#9c6b4e"],
    "font": {"family": "-apple-system, 'Segoe UI', system-ui, Roboto, sans-serif", "size": 12},
    "height": 340,
    "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
    "legend": {"orientation": "h", "y": -0.2},
}
NO_PERSONA = "(none)"


def plain(value: Any) -> Any:
    """A table cell as JSON: Decimal -> float, date/datetime -> ISO string, dict -> JSON text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def values(table: Table, column: str | Sequence[str]) -> list[Any]:
    """A column's cells as JSON; several columns are joined into labels (``"a / b"``)."""
    if isinstance(column, str):
        return [plain(value) for value in table.column(column)]
    columns = [table.column(name) for name in column]
    return [" / ".join(str(part) for part in parts) for parts in zip(*columns, strict=True)]


def figure_dict(figure: go.Figure) -> dict:
    """The figure as plain JSON data (plotly's encoder, then parsed back)."""
    return json.loads(figure.to_json())


def _figure(traces: Sequence[go.BaseTraceType], **layout) -> dict:
    return figure_dict(go.Figure(data=list(traces), layout={**LAYOUT, **layout}))


def _axis(title: str = "", percent: bool = False) -> dict:
    return {"title": {"text": title}, "tickformat": ".0%" if percent else "", "gridcolor": "#e8e8e8"}


# --- generic --------------------------------------------------------------------------------


def bars(
    table: Table,
    *,
    x: str | Sequence[str],
    ys: Sequence[str],
    y_title: str = "",
    percent: bool = False,
    stacked: bool = False,
) -> dict:
    """Grouped (or stacked) bars: one trace per ``ys`` column over the ``x`` categories."""
    traces = [go.Bar(x=values(table, x), y=values(table, y), name=y) for y in ys]
    return _figure(traces, barmode="stack" if stacked else "group", yaxis=_axis(y_title, percent))


def _groups(table: Table, *, x: str, y: str, by: str) -> dict[Any, tuple[list, list]]:
    """``(xs, ys)`` per distinct value of ``by``, in order of first appearance."""
    groups: dict[Any, tuple[list, list]] = {}
    for row in table.as_records():
        xs, ys = groups.setdefault(plain(row[by]), ([], []))
        xs.append(plain(row[x]))
        ys.append(plain(row[y]))
    return groups


DAYS_AXIS = {"type": "date", "tickformat": "%b %-d", "gridcolor": "#e8e8e8"}


def lines_by(table: Table, *, x: str, y: str, by: str, y_title: str = "", percent: bool = False) -> dict:
    """One line per distinct value of ``by``: ``y`` over the days in ``x``."""
    groups = _groups(table, x=x, y=y, by=by)
    traces = [go.Scatter(x=xs, y=ys, mode="lines+markers", name=str(name)) for name, (xs, ys) in groups.items()]
    return _figure(traces, xaxis=DAYS_AXIS, yaxis={**_axis(y_title, percent), "rangemode": "tozero"})


def stacked_by(table: Table, *, x: str, y: str, by: str, y_title: str = "", percent: bool = False) -> dict:
    """Bars stacked per day in ``x``, one trace per distinct value of ``by`` (shares of a day's whole)."""
    groups = _groups(table, x=x, y=y, by=by)
    traces = [go.Bar(x=xs, y=ys, name=str(name)) for name, (xs, ys) in groups.items()]
    return _figure(traces, barmode="stack", xaxis=DAYS_AXIS, yaxis=_axis(y_title, percent))


def interval_bars(table: Table, *, x: str, low: str, high: str, y_title: str = "", percent: bool = False) -> dict:
    """Floating bars from ``low`` (``base``) to ``high`` per category; rows without an interval are left out."""
    rows = [row for row in table.as_records() if row[low] is not None and row[high] is not None]
    trace = go.Bar(
        x=[plain(row[x]) for row in rows],
        base=[plain(row[low]) for row in rows],
        y=[plain(row[high]) - plain(row[low]) for row in rows],
        customdata=[[plain(row[low]), plain(row[high])] for row in rows],
        hovertemplate="%{x}: %{customdata[0]:.1%} to %{customdata[1]:.1%}<extra></extra>",
        name=f"{low} to {high}",
    )
    return _figure([trace], yaxis={**_axis(y_title, percent), "zeroline": True}, showlegend=False)


def table_figure(
    table: Table, *, highlight: str | None = None, formats: dict[str, Callable[[dict], str]] | None = None
) -> dict:
    """The table itself as a Plotly table (lists such as the claims ledger); numbers as the
    pages print them (:func:`analytics.templatetags.dashboard_numbers.cell`, or
    ``formats[column](row)``). Rows whose ``highlight`` column is true are drawn in red."""
    red = [bool(flag) for flag in table.column(highlight)] if highlight else [False] * len(table.rows)
    formats = formats or {}

    def shown(row: dict, column: str) -> Any:
        value = row[column]
        if column in formats:
            return formats[column](row)
        if value is None:
            return "—"
        return cell(value, column) if isinstance(value, float | Decimal) else plain(value)

    records = table.as_records()
    trace = go.Table(
        header={"values": table.columns, "align": "left"},
        cells={
            "values": [[shown(row, column) for row in records] for column in table.columns],
            "align": "left",
            "fill": {"color": [["#fbeeee" if flag else "white" for flag in red]]},
            "font": {"color": [["#ba2121" if flag else "#333" for flag in red]]},
        },
    )
    height = 80 + 30 * min(len(table.rows), 15)
    return _figure([trace], height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10})


# --- overview -------------------------------------------------------------------------------


def _small(text: str) -> str:
    return f"<span style='font-size:0.75em;color:#666'>{text}</span>"


def money_title(title: str, currency: str) -> str:
    return f"{title} ({currency})" if currency else title


def totals(table: Table, *, definition: str) -> dict:
    """KPI tiles: sessions, conversion rate (its short ``definition`` under it), revenue in its
    currency (first row of ``overview_totals``)."""
    row = table.as_records()[0]
    currency = row["currency"]
    tiles = [
        ("sessions", f"Sessions<br>{_small('started in the range')}", "", {}),
        ("conversion_rate", f"Conversion rate<br>{_small(definition)}", ".1%", {}),
        (
            "revenue",
            f"{money_title('Revenue', currency)}<br>{_small('conversion values')}",
            ",.2f",
            {"suffix": f" {currency}"} if currency else {},
        ),
    ]
    traces = [
        go.Indicator(
            mode="number",
            value=plain(row[column]) if row[column] is not None else 0,
            title={"text": title},
            number={"valueformat": number_format, **extra},
            domain={"row": 0, "column": index},
        )
        for index, (column, title, number_format, extra) in enumerate(tiles)
    ]
    return _figure(
        traces, grid={"rows": 1, "columns": len(tiles)}, height=180, margin={"l": 10, "r": 10, "t": 50, "b": 10}
    )


def automated(table: Table, *, excluded: bool) -> dict:
    """``automated_sessions``: their total as a tile, saying whether the page's other numbers
    leave them out, and a bar per reason."""
    note = "excluded from every other number" if excluded else "included in the other numbers"
    tile = go.Indicator(
        mode="number",
        value=sum(values(table, "sessions")),
        title={"text": f"Automated sessions<br><span style='font-size:0.75em;color:#666'>{note}</span>"},
        domain={"x": [0, 0.3], "y": [0, 1]},
    )
    per_reason = go.Bar(
        x=values(table, "sessions"), y=values(table, "reason"), orientation="h", name="sessions", showlegend=False
    )
    most = max(values(table, "sessions"), default=0)
    return _figure(
        [tile, per_reason],
        height=max(200, 80 + 28 * len(table.rows)),
        margin={"l": 10, "r": 20, "t": 70, "b": 40},
        xaxis={**_axis("sessions"), "domain": [0.5, 1], "tick0": 0, "dtick": max(1, -(-most // 5))},
        yaxis={"automargin": True, "autorange": "reversed"},
    )


def over_time(table: Table, *, currency: str = "") -> dict:
    """``overview_timeseries``: sessions and converted sessions, conversion rate, revenue; a panel each, days shared."""
    figure = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=[
            "Sessions, and sessions that reached the conversion stage",
            "Conversion rate (reached the conversion stage ÷ sessions)",
            money_title("Revenue", currency),
        ],
    )
    days = values(table, "day")
    figure.add_trace(go.Bar(x=days, y=values(table, "sessions"), name="sessions"), row=1, col=1)
    figure.add_trace(go.Bar(x=days, y=values(table, "conversions"), name="conversions"), row=1, col=1)
    figure.add_trace(
        go.Scatter(x=days, y=values(table, "conversion_rate"), name="conversion_rate", mode="lines+markers"),
        row=2,
        col=1,
    )
    figure.add_trace(go.Scatter(x=days, y=values(table, "revenue"), name="revenue", mode="lines+markers"), row=3, col=1)
    figure.update_layout(**{**LAYOUT, "height": 620, "barmode": "group"})
    figure.update_xaxes(**DAYS_AXIS)
    figure.update_yaxes(gridcolor="#e8e8e8", rangemode="tozero")
    figure.update_yaxes(tickformat=".0%", row=2, col=1)
    return figure_dict(figure)


def funnel(table: Table) -> dict:
    """Sessions reaching at least each stage; the drop-off from the stage before in each label."""
    trace = go.Funnel(
        y=values(table, "stage"),
        x=values(table, "sessions_reached"),
        customdata=[
            [drop, rate] for drop, rate in zip(values(table, "drop_off"), values(table, "drop_off_rate"), strict=True)
        ],
        textinfo="value+percent initial",
        hovertemplate="%{y}: %{x} sessions (%{percentInitial:.1%} of all sessions)<br>"
        "drop-off %{customdata[0]}<extra></extra>",
    )
    return _figure([trace], margin={"l": 110, "r": 20, "t": 20, "b": 20})


def paths(table: Table) -> dict:
    """Sessions per path (bars) and conversion rate (markers, right axis)."""
    labels = values(table, "path")
    traces = [
        go.Bar(x=labels, y=values(table, "sessions"), name="sessions"),
        go.Scatter(
            x=labels,
            y=values(table, "conversion_rate"),
            name="conversion_rate",
            mode="markers",
            yaxis="y2",
            marker={"size": 12},
        ),
    ]
    return _figure(
        traces,
        margin={**LAYOUT["margin"], "r": 70},
        yaxis=_axis("sessions"),
        yaxis2={
            **_axis("conversion rate", percent=True),
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
        },
    )


# --- journeys -------------------------------------------------------------------------------


def sankey(table: Table) -> dict:
    """Stage flows of one path: nodes are ``start`` and the stages, in order of first appearance."""
    nodes: list[str] = []

    def node(name: str) -> int:
        if name not in nodes:
            nodes.append(name)
        return nodes.index(name)

    sources = [node(name) for name in table.column("from_stage")]
    targets = [node(name) for name in table.column("to_stage")]
    trace = go.Sankey(
        arrangement="snap",
        node={"label": nodes, "pad": 18, "thickness": 16},
        link={"source": sources, "target": targets, "value": values(table, "count")},
    )
    return _figure([trace], height=360)


def time_to_convert(table: Table, *, buckets: Sequence[str]) -> dict:
    """Converted sessions per time-to-convert bucket, stacked per path."""
    traces = [
        go.Bar(x=list(buckets), y=[row[bucket] for bucket in buckets], name=row["path"]) for row in table.as_records()
    ]
    return _figure(
        traces, barmode="stack", yaxis=_axis("converted sessions"), xaxis={"title": {"text": "time to convert"}}
    )


def share_over_time(table: Table, *, y: str, title: str) -> dict:
    trace = go.Scatter(x=values(table, "day"), y=values(table, y), name=y, mode="lines+markers")
    return _figure([trace], xaxis=DAYS_AXIS, yaxis={**_axis(title, percent=True), "rangemode": "tozero"})


def mix(table: Table, *, label: str, value: str) -> dict:
    """Shares of a whole (a donut); an empty label reads "(none)"."""
    labels = [plain(name) or NO_PERSONA for name in table.column(label)]
    trace = go.Pie(labels=labels, values=values(table, value), sort=False, hole=0.45)
    return _figure([trace])
