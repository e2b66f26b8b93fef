"""Experiment and scarcity reports: what the staff API returns and the dashboards plot.

The API views and the dashboard pages call these functions, so both always show the
same numbers; the numbers themselves come from the optimizer's ``experiment_results``
and the scarcity engine's ``scarcity_effectiveness``.
"""

from __future__ import annotations

import datetime as dt

from personalization.models import Experiment, OptimizationProposal, Status
from personalization.selectors import experiment_revenue, scarcity_effectiveness
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
    "enough_data",
    "reason",
    "significant",
    "sequential_ready",
    "sequential_significant",
    "p_value_holm",
    "sequential_p_value_holm",
    "period_weighted_rate",
)
REVENUE_FIELDS = (
    "revenue",
    "orders",
    "revenue_per_session",
    "average_order_value",
    "revenue_per_session_comparison",
    "average_order_value_comparison",
)


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


def experiment_results_out(
    experiment: Experiment, results: dict, proposals: list[OptimizationProposal], revenue: dict
) -> dict:
    """The API's answer: the optimizer's results per variant, with revenue merged in by variant."""
    revenue_of = {row["variant_id"]: row for row in revenue["variants"]}
    empty = dict.fromkeys(REVENUE_FIELDS)
    return {
        "experiment": experiment.key,
        "status": experiment_status(experiment),
        "allocation": experiment.allocation,
        "primary_goal": experiment.primary_goal,
        "minimum_sample": experiment.minimum_sample,
        "winner": experiment.winner.key if experiment.winner_id else None,
        "variants": [
            {
                **{name: row[name] for name in VARIANT_FIELDS},
                **{name: revenue_of.get(row["variant_id"], empty)[name] for name in REVENUE_FIELDS},
            }
            for row in results["variants"]
        ],
        "period_weighted": results["period_weighted"],
        "revenue": {name: revenue[name] for name in ("currency", "definition", "other_currency_orders")},
        "sample_size": results["sample_size"],
        "winner_rule": results["winner_rule"],
        "srm": {
            "p_value": results["srm"]["p_value"],
            "flagged": results["srm"]["flagged"],
            "weights_since": results["srm"]["weights_since"],
        },
        "proposals": [proposal_out(proposal) for proposal in proposals],
    }


def experiment_report(*, experiment: Experiment) -> dict:
    """An experiment's results as ``GET /api/v1/analytics/experiments/{key}`` answers them."""
    results = experiment_results(experiment=experiment)
    revenue = experiment_revenue(experiment=experiment)
    return experiment_results_out(experiment, results, proposals_pending(experiment=experiment), revenue)


def scarcity_report(*, site, since: dt.datetime | None, until: dt.datetime | None, goal: str = "purchase") -> dict:
    """Scarcity effectiveness as ``GET /api/v1/analytics/scarcity`` answers it."""
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "goal": goal,
        "rules": scarcity_effectiveness(site=site, since=since, until=until, goal=goal),
    }
