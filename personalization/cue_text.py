"""Urgency cue wording: approved templates whose numbers come only from the data.

A scarcity rule's ``message_template`` is plain text with placeholders. The approver
approves the words; the numbers are filled in at display time from the evidence, and
from nowhere else:

| placeholder | filled with | allowed in |
| --- | --- | --- |
| ``{count}`` | the exact count (never rounded) | social_proof_views, social_proof_purchases |
| ``{window}`` | the counting window in words: "in the last hour", "today" | the same |
| ``{stock}`` | the real stock remaining | low_stock |
| ``{ends_at}`` | the offer's absolute end, "2026-01-05 18:00 UTC" | offer_deadline, flash_sale |
| ``{offer}`` | the offer's approved name | every trigger |

A template holds no digits of its own (a number typed into the text would be a claim
nobody measures), no format specs or conversions (``{count:.0f}`` could round), and
names its trigger's number: social proof states its count and its window, a low-stock
cue its stock, a countdown its end.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime

TRIGGER_PLACEHOLDERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # trigger: (allowed, required)
    "social_proof_views": (frozenset({"count", "window", "offer"}), frozenset({"count", "window"})),
    "social_proof_purchases": (frozenset({"count", "window", "offer"}), frozenset({"count", "window"})),
    "low_stock": (frozenset({"stock", "offer"}), frozenset({"stock"})),
    "offer_deadline": (frozenset({"ends_at", "offer"}), frozenset({"ends_at"})),
    "flash_sale": (frozenset({"ends_at", "offer"}), frozenset({"ends_at"})),
    "exclusivity": (frozenset({"offer"}), frozenset()),
}


def template_fields(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    """``(literal, field, spec, conversion)`` parts of a template; raises ValueError when malformed."""
    return list(string.Formatter().parse(template))


def template_errors(trigger_type: str, template: str) -> list[str]:
    """Why ``template`` cannot be approved for ``trigger_type`` (empty when it can)."""
    if trigger_type not in TRIGGER_PLACEHOLDERS:
        return [f"Unknown trigger type {trigger_type!r}."]
    allowed, required = TRIGGER_PLACEHOLDERS[trigger_type]
    try:
        parts = template_fields(template)
    except ValueError as error:
        return [f"The template is malformed: {error}. Write braces only around a placeholder name."]
    errors = []
    literal = "".join(part[0] for part in parts)
    if any(char.isdigit() for char in literal):
        errors.append("Numbers in the text come only from placeholders such as {count} or {stock}; remove digits.")
    used = set()
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if spec or conversion:
            errors.append(f"Write {{{name}}} without a format or conversion: the value is shown exactly.")
        if name not in allowed:
            names = ", ".join(f"{{{item}}}" for item in sorted(allowed))
            errors.append(f"{{{name}}} cannot be used in a {trigger_type} cue; allowed: {names}.")
        used.add(name)
    for name in sorted(required - used):
        errors.append(f"A {trigger_type} cue must show {{{name}}}.")
    return errors


def render(template: str, values: dict[str, object]) -> str:
    """The template with its placeholders replaced by ``values`` (every value via ``str``)."""
    out = []
    for literal, name, _, _ in template_fields(template):
        out.append(literal)
        if name is not None:
            out.append(str(values[name]))
    return "".join(out)


def window_phrase(trigger_type: str, window_minutes: int) -> str:
    """How a social-proof cue states its window."""
    if trigger_type == "social_proof_purchases":
        return "today"
    if window_minutes == 60:
        return "in the last hour"
    if window_minutes % 60 == 0:
        return f"in the last {window_minutes // 60} hours"
    if window_minutes == 1:
        return "in the last minute"
    return f"in the last {window_minutes} minutes"


def format_ends_at(moment: datetime) -> str:
    """An absolute end in UTC; seconds are shown when they are not zero, so it is never rounded."""
    moment = moment.astimezone(UTC)
    if moment.second or moment.microsecond:
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")
