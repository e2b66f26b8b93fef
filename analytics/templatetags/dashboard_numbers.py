"""How the dashboard pages print numbers: rates and changes in percent, money with its currency.

The tables behind the charts (and their CSVs) keep fractions and decimals as computed;
only what a person reads is formatted here. ``None`` prints as an em dash.
"""

from __future__ import annotations

from decimal import Decimal

from django import template

from analytics import verdicts

register = template.Library()
DASH = "—"


@register.filter
def percent(value, digits: int = 1) -> str:
    """A rate or share (a fraction) in percent: ``0.1234`` -> ``12.3%``."""
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def change(value) -> str:
    """A relative change in percent with its sign: ``0.12`` -> ``+12%``."""
    return DASH if value is None else verdicts.percent(float(value))


@register.filter
def count(value) -> str:
    """A count with thousands separators: ``35277`` -> ``35,277``."""
    return DASH if value is None else f"{int(value):,}"


@register.filter
def points(value) -> str:
    """A difference of rates in percentage points: ``0.0015`` -> ``0.15 pp``."""
    return DASH if value is None else f"{float(value) * 100:.2f} pp"


@register.filter
def money(value, currency: str = "") -> str:
    """An amount with two decimals and its currency: ``1234.5, "EUR"`` -> ``1,234.50 EUR``."""
    if value is None:
        return DASH
    amount = f"{Decimal(str(value)):,.2f}"
    return f"{amount} {currency}" if currency else amount


@register.filter
def minutes(seconds) -> str:
    """A duration in seconds as minutes: ``330`` -> ``5.5 min``."""
    return DASH if seconds is None else f"{float(seconds) / 60:.1f} min"


@register.filter
def p_value(value) -> str:
    """A p-value: four decimals, ``< 0.0001`` below that."""
    if value is None:
        return DASH
    return "< 0.0001" if float(value) < 0.0001 else f"{float(value):.4f}"


CHANGE_COLUMNS = {
    "lift",
    "relative_lift",
    "ci_low",
    "ci_high",
    "sequential_low",
    "sequential_high",
    "credible_low",
    "credible_high",
}


def _is_percent(column: str) -> bool:
    return (
        column == "rate"
        or column.endswith(("_rate", "share"))
        or column.startswith("chance_")
        or column == "mean_confidence"
    )


@register.filter
def cell(value, column: str) -> str:
    """A cell of a chart's numbers table, formatted by its column: rates and shares in
    percent, lifts and their intervals as signed percent, p-values, money with two decimals."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return str(value)
    if column in CHANGE_COLUMNS:
        return change(value)
    if column.startswith("p_value"):
        return p_value(value)
    if isinstance(value, float) and _is_percent(column):
        return percent(value)
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


@register.filter
def with_columns(row, columns) -> list[tuple]:
    """A row's cells paired with their column names, for :func:`cell`."""
    return list(zip(row, columns, strict=True))
