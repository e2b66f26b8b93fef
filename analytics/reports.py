"""Experiment and scarcity reports: what the staff API returns and the dashboards plot.

The API views and the dashboard pages call these functions, so both always show the
same numbers; the conversion numbers come from the optimizer's ``experiment_results``
and the scarcity engine's ``scarcity_effectiveness``, revenue and guardrails from
:mod:`analytics.arm_metrics`, the verdict from :mod:`analytics.verdicts`.

Where the issue left the choice open, as GrowthBook and Statsig do: the verdict reads
the always-valid test Holm-adjusted over the treatments (the optimizer's winner rule),
so a manager may look at any time; guardrails use the fixed-horizon test (more
sensitive, so a harm is flagged sooner; a false flag only delays a winner); the sample
still needed is the optimizer's (``sample_size``: the experiment's minimum detectable
effect, else :data:`core.statistics.DEFAULT_MDE`, at 80% power).
"""

from __future__ import annotations

import datetime as dt

from analytics.arm_metrics import experiment_arms_compared, rules_compared
from analytics.verdicts import ArmReading, Change, Verdict, experiment_verdict
from personalization.models import Experiment, OptimizationProposal, ScarcityRule, Status
from personalization.selectors import scarcity_effectiveness
from personalization.services.optimizer import experiment_results, proposals_pending

VARIANT_FIELDS = (
    "key",
    "control",
    "paused",
    "weight",
    "exposures",
    "conversions",
    "rate",
    "ci_low",
    "ci_high",
    "chance_to_beat_control",
    "chance_to_be_best",
    "expected_loss",
    "relative_lift",
    "p_value",
    "confidence_low",
    "confidence_high",
    "sequential_low",
    "sequential_high",
    "sequential_p_value",
    "p_value_holm",
    "sequential_p_value_holm",
    "enough_data",
    "reason",
    "significant",
    "sequential_ready",
    "sequential_significant",
    "period_weighted_rate",
)
VERDICT_ALPHA = 0.05


def experiment_status(experiment: Experiment) -> str:
    """``running`` while the experiment serves traffic; otherwise its status."""
    if experiment.status == Status.LIVE and experiment.ended_at is None and experiment.published is not None:
        return "running"
    return experiment.status


def proposal_out(proposal: OptimizationProposal) -> dict:
    return {
        "id": proposal.pk,
        "kind": proposal.kind,
        "window": proposal.window,
        "proposed": proposal.proposed,
        "expected_impact": proposal.expected_impact,
        "confidence": proposal.confidence,
        "guardrail_reason": proposal.guardrail_reason,
        "created_at": proposal.created_at.isoformat(),
    }


def experiment_results_out(experiment: Experiment, results: dict, proposals: list[OptimizationProposal]) -> dict:
    return {
        "experiment": experiment.key,
        "status": experiment_status(experiment),
        "allocation": experiment.allocation,
        "primary_goal": experiment.primary_goal,
        "primary_metric": primary_metric(experiment),
        "minimum_sample": experiment.minimum_sample,
        "winner": experiment.winner.key if experiment.winner_id else None,
        "variants": [{name: row[name] for name in VARIANT_FIELDS} for row in results["variants"]],
        "period_weighted": results["period_weighted"],
        "sample_size": results["sample_size"],
        "winner_rule": results["winner_rule"],
        "srm": {
            "p_value": results["srm"]["p_value"],
            "flagged": results["srm"]["flagged"],
            "weights_since": results["srm"]["weights_since"],
        },
        "proposals": [proposal_out(proposal) for proposal in proposals],
    }


def primary_metric(experiment: Experiment) -> str:
    goal = experiment.primary_goal.replace("_", " ")
    return f"conversion rate: exposed sessions with a {goal} at or after exposure ÷ exposed sessions"


def _reading(variant: dict, minimum_sample_reached: bool) -> ArmReading:
    p_value = variant.get("sequential_p_value_holm")
    lift = variant["relative_lift"]
    significant = p_value is not None and p_value < VERDICT_ALPHA and lift is not None
    return ArmReading(
        key=variant["key"],
        exposures=variant["exposures"],
        primary=Change("conversion rate", lift, variant["sequential_low"], variant["sequential_high"]),
        better=significant and lift > 0 and minimum_sample_reached,
        worse=significant and lift < 0,
        guardrails_worse=[
            Change(row["label"], row["relative_change"], row["ci_low"], row["ci_high"])
            for row in variant["guardrails"]
            if row["worse"]
        ],
    )


def verdict_of(report: dict, experiment: Experiment) -> Verdict:
    active = [v for v in report["variants"] if not v["paused"]]
    reached = bool(active) and min(v["exposures"] for v in active) >= experiment.minimum_sample
    return experiment_verdict(
        treatments=[_reading(v, reached) for v in active if not v["control"]],
        srm_flagged=report["srm"]["flagged"],
        declared_winner=report["winner"],
        more_per_arm=report["sample_size"]["more_per_arm"],
        planned_per_arm=report["sample_size"]["per_arm"],
        status=report["status"],
    )


def experiment_report(*, experiment: Experiment) -> dict:
    """An experiment's results as ``GET /api/v1/analytics/experiments/{key}`` answers them:
    the optimizer's numbers per variant, with revenue and guardrails, the sample size and the verdict."""
    results = experiment_results(experiment=experiment)
    report = experiment_results_out(experiment, results, proposals_pending(experiment=experiment))
    metrics = experiment_arms_compared(experiment)
    for variant in report["variants"]:
        variant.update(metrics[variant["key"]])
    currencies = {variant["revenue"]["currency"] for variant in report["variants"]} - {None}
    report["currency"] = currencies.pop() if currencies else None
    report["verdict"] = verdict_of(report, experiment).as_dict()
    return report


def scarcity_report(*, site, since: dt.datetime | None, until: dt.datetime | None, goal: str = "purchase") -> dict:
    """Scarcity effectiveness as ``GET /api/v1/analytics/scarcity`` answers it.

    Per rule, beside the conversion lift (with ``lift.p_value_holm``, Holm over the site's
    rules), exposed against holdout sessions: ``revenue`` and ``guardrails``
    (:mod:`analytics.arm_metrics`; a guardrail ``worse`` is shown in red).
    """
    rules = scarcity_effectiveness(site=site, since=since, until=until, goal=goal)
    ids = dict(ScarcityRule.objects.filter(site=site).values_list("key", "pk"))
    compared = rules_compared([ids[rule["rule"]] for rule in rules], goal=goal, since=since, until=until)
    for rule in rules:
        exposed = compared[ids[rule["rule"]]]["exposed"]
        rule["revenue"] = exposed["revenue"]
        rule["guardrails"] = exposed["guardrails"]
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "goal": goal,
        "rules": rules,
    }
