"""The plain verdict at the top of each experiment: one sentence a manager can act on.

:func:`experiment_verdict` decides it from readings of the arms, in this order (the first
that holds wins):

1. the sample-ratio test flagged the split: nothing else can be trusted;
2. a winner was declared: it, with its lift;
3. the best treatment that beats the control (always-valid test, Holm-adjusted over the
   treatments, the optimizer's winner rule) but is significantly worse on a guardrail:
   the guardrail;
4. that treatment with no guardrail worse: the winner, with its lift and interval;
5. any treatment significantly worse on a guardrail: the guardrail;
6. a treatment significantly worse than the control on the primary metric: no winner;
7. otherwise no difference yet, with the visitors still needed per arm for the minimum
   detectable effect (:func:`core.statistics.sample_size_per_arm`), or none at all when
   the planned sample was reached.

Figures are percent with a sign, one decimal under 10% (``+4.5%``) and whole above
(``+12%``); visitor counts are rounded up to two significant digits ("about 1,300").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Change:
    """A relative change of a metric over the control, with its 95% interval."""

    label: str
    relative: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class ArmReading:
    key: str
    exposures: int
    primary: Change
    better: bool = False  # significantly better than the control on the primary metric
    worse: bool = False  # significantly worse
    guardrails_worse: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    kind: str  # srm, winner, guardrail, control_better, keep_running, no_difference, no_data
    text: str
    variant: str | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "variant": self.variant}


def percent(value: float) -> str:
    """A relative change in percent with its sign: ``+12%``, ``+4.5%``, ``-0.8%``."""
    number = value * 100
    return f"{number:+.0f}%" if abs(number) >= 9.95 else f"{number:+.1f}%"


def about(count: int) -> str:
    """``count`` rounded up to two significant digits, with thousands separators."""
    if count < 100:
        return str(count)
    step = 10 ** (len(str(count)) - 2)
    return f"{math.ceil(count / step) * step:,}"


def _figures(change: Change) -> str:
    if change.relative is None:
        return ""
    if change.low is None or change.high is None:
        return f" ({change.label} {percent(change.relative)})"
    return f" ({change.label} {percent(change.relative)}, 95% interval {percent(change.low)} to {percent(change.high)})"


def _guardrail(arm: ArmReading) -> Verdict:
    changes = arm.guardrails_worse
    if len(changes) == 1:
        [change] = changes
        text = f"guardrail {change.label} worse for {arm.key}{_figures(change)}"
    else:
        labels = ", ".join(change.label for change in changes[:-1]) + f" and {changes[-1].label}"
        text = f"guardrails {labels} worse for {arm.key}"
    return Verdict("guardrail", text, arm.key)


def experiment_verdict(
    *,
    treatments: list[ArmReading],
    srm_flagged: bool,
    declared_winner: str | None = None,
    more_per_arm: int | None = None,
    planned_per_arm: int | None = None,
    status: str = "running",
) -> Verdict:
    """The verdict (see the module docstring); ``treatments`` excludes the control.

    ``more_per_arm`` is how many more visitors the smallest arm needs to reach
    ``planned_per_arm`` (0 when reached); None when the sample size cannot be computed
    (no conversions in the control yet). ``status`` is the report's: ``running``, or the
    experiment's approval status (``archived`` reads "ended").
    """
    if srm_flagged:
        return Verdict("srm", "stopped: sample ratio mismatch")
    if declared_winner is not None:
        arm = next((arm for arm in treatments if arm.key == declared_winner), None)
        return Verdict("winner", f"winner: {declared_winner}{_figures(arm.primary) if arm else ''}", declared_winner)
    if not treatments or all(arm.exposures == 0 for arm in treatments):
        return Verdict("no_data", "no data yet: no visitor has seen a treatment")
    winners = sorted((arm for arm in treatments if arm.better), key=lambda arm: -(arm.primary.relative or 0))
    if winners:
        best = winners[0]
        if best.guardrails_worse:
            return _guardrail(best)
        return Verdict("winner", f"winner: {best.key}{_figures(best.primary)}", best.key)
    for arm in treatments:
        if arm.guardrails_worse:
            return _guardrail(arm)
    losers = [arm for arm in treatments if arm.worse]
    if losers:
        worst = min(losers, key=lambda arm: arm.primary.relative or 0)
        return Verdict("control_better", f"no winner: {worst.key} worse than control{_figures(worst.primary)}")
    if status != "running":
        return Verdict("no_difference", f"{'ended' if status == 'archived' else status}: no difference detected")
    if more_per_arm is None:
        return Verdict(
            "keep_running", "no difference detected yet: not enough data to size the test (no control conversions)"
        )
    if more_per_arm > 0:
        return Verdict("keep_running", f"no difference detected yet: about {about(more_per_arm)} more visitors per arm")
    planned = f" ({about(planned_per_arm)} visitors per arm)" if planned_per_arm else ""
    return Verdict("no_difference", f"no difference detected at the planned sample{planned}")
