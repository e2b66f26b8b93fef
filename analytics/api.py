"""Staff analytics API: experiment results (PRODUCT.md appendix, ``GET /api/v1/analytics/experiments/{key}``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from journeys.api import SITE_KEY, StaffApi
from personalization.models import Experiment, OptimizationProposal, Status
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


def experiment_results_out(experiment: Experiment, results: dict, proposals: list[OptimizationProposal]) -> dict:
    return {
        "experiment": experiment.key,
        "status": experiment_status(experiment),
        "allocation": experiment.allocation,
        "primary_goal": experiment.primary_goal,
        "minimum_sample": experiment.minimum_sample,
        "winner": experiment.winner.key if experiment.winner_id else None,
        "variants": [{name: row[name] for name in VARIANT_FIELDS} for row in results["variants"]],
        "srm": {
            "p_value": results["srm"]["p_value"],
            "flagged": results["srm"]["flagged"],
            "weights_since": results["srm"]["weights_since"],
        },
        "proposals": [proposal_out(proposal) for proposal in proposals],
    }


@extend_schema(parameters=[SITE_KEY], responses={200: dict})
class ExperimentResultsApi(StaffApi):
    """Per variant: counts, rate, credible interval of the lift, chances, loss, p-values; SRM; pending proposals."""

    def get(self, request, key: str):
        site = self.site_or_400(request)
        experiment = Experiment.objects.select_related("winner").filter(site=site, key=key).first()
        if experiment is None:
            raise NotFound(f"No experiment '{key}' for this site.", code="experiment_not_found")
        results = experiment_results(experiment=experiment)
        return Response(experiment_results_out(experiment, results, proposals_pending(experiment=experiment)))
