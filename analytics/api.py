"""Staff analytics API: experiment results (PRODUCT.md appendix, ``GET /api/v1/analytics/experiments/{key}``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from analytics.api_schema import STAFF_AUTH, ExperimentReportOut
from analytics.reports import experiment_report
from journeys import api_schema as doc
from journeys.api import StaffApi
from personalization.models import Experiment

VARIANT_EXAMPLE = {
    "key": "hero-a",
    "control": True,
    "paused": False,
    "weight": 0.5,
    "exposures": 1000,
    "conversions": 100,
    "rate": 0.1,
    "ci_low": None,
    "ci_high": None,
    "chance_to_beat_control": None,
    "chance_to_be_best": 0.0,
    "expected_loss": 0.1497,
    "relative_lift": None,
    "p_value": None,
    "confidence_low": None,
    "confidence_high": None,
    "sequential_low": None,
    "sequential_high": None,
    "sequential_p_value": None,
    "enough_data": None,
    "reason": None,
    "significant": None,
    "sequential_ready": None,
    "sequential_significant": None,
    "p_value_holm": None,
    "sequential_p_value_holm": None,
    "period_weighted_rate": None,
    "revenue": 4200.0,
    "orders": 100,
    "revenue_per_session": 4.2,
    "average_order_value": 42.0,
    "revenue_per_session_comparison": None,
    "average_order_value_comparison": None,
}
COMPARISON_EXAMPLE = {
    "alpha": 0.05,
    "enough_data": True,
    "reason": None,
    "control_mean": 4.2,
    "treatment_mean": 9.8,
    "relative_lift": 1.3333,
    "standard_error": 0.3167,
    "ci_low": 0.7121,
    "ci_high": 1.9546,
    "p_value": 0.0,
    "significant": True,
    "sequential_ready": True,
    "sequential_low": 0.3439,
    "sequential_high": 2.3228,
    "sequential_p_value": 0.0024,
    "sequential_significant": True,
    "chance_to_win": 1.0,
}


@extend_schema_view(
    get=extend_schema(
        operation_id="experiment_results",
        summary="An experiment's results",
        tags=["analytics"],
        description="Per variant of the experiment `key` of the site named by `X-Site-Key`: exposures, "
        "conversions, rate, the relative lift over control with its credible, confidence and always-valid "
        "intervals, the chances to beat control and to be best, and the expected loss; the sample-ratio test; "
        "and the optimizer's proposals waiting for approval. The same numbers as the experiments dashboard. "
        "Revenue per session and average order value per variant, each compared with the control; the "
        "visitors per arm the winner rule needs (`sample_size`). Lifts and rates are fractions (0.12 = +12%). "
        + STAFF_AUTH,
        parameters=[doc.SITE_KEY],
        responses={
            200: ExperimentReportOut,
            **doc.staff_errors(
                not_found=doc.not_found("experiment_not_found", "no experiment with this key on the site."),
                bad_request="The site is not named (`X-Site-Key`).",
            ),
        },
        examples=[
            OpenApiExample(
                "Treatment ahead",
                response_only=True,
                status_codes=["200"],
                value={
                    "experiment": "hero-test",
                    "status": "running",
                    "allocation": "fixed",
                    "primary_goal": "purchase",
                    "minimum_sample": 100,
                    "winner": None,
                    "variants": [
                        VARIANT_EXAMPLE,
                        {
                            **VARIANT_EXAMPLE,
                            "key": "hero-b",
                            "control": False,
                            "conversions": 250,
                            "rate": 0.25,
                            "ci_low": 1.0072,
                            "ci_high": 2.0769,
                            "chance_to_beat_control": 1.0,
                            "chance_to_be_best": 1.0,
                            "expected_loss": 0.0,
                            "relative_lift": 1.5,
                            "p_value": 0.0,
                            "confidence_low": 0.9629,
                            "confidence_high": 2.0371,
                            "sequential_low": 0.6445,
                            "sequential_high": 2.3555,
                            "sequential_p_value": 0.0,
                            "enough_data": True,
                            "significant": True,
                            "sequential_ready": True,
                            "sequential_significant": True,
                            "p_value_holm": 0.0,
                            "sequential_p_value_holm": 0.0,
                            "revenue": 9800.0,
                            "orders": 250,
                            "revenue_per_session": 9.8,
                            "average_order_value": 39.2,
                            "revenue_per_session_comparison": COMPARISON_EXAMPLE,
                            "average_order_value_comparison": {
                                **COMPARISON_EXAMPLE,
                                "control_mean": 42.0,
                                "treatment_mean": 39.2,
                                "relative_lift": -0.0667,
                                "standard_error": 0.0311,
                                "ci_low": -0.1276,
                                "ci_high": -0.0057,
                                "p_value": 0.0322,
                                "sequential_low": -0.1808,
                                "sequential_high": 0.0474,
                                "sequential_p_value": 0.5109,
                                "sequential_significant": False,
                                "chance_to_win": 0.0161,
                            },
                        },
                    ],
                    "period_weighted": False,
                    "revenue": {
                        "currency": "EUR",
                        "definition": "revenue per session: the values of every conversion ...",
                        "other_currency_orders": 0,
                    },
                    "sample_size": {
                        "metric": "conversion rate",
                        "mde": 0.1,
                        "power": 0.8,
                        "alpha": 0.05,
                        "baseline_rate": 0.1,
                        "per_arm": 35277,
                        "more_per_arm": 34277,
                        "sequential": True,
                    },
                    "winner_rule": "winner: an active treatment whose always-valid (sequential) p-value ...",
                    "srm": {"p_value": 1.0, "flagged": False, "weights_since": None},
                    "proposals": [],
                },
            ),
        ],
    )
)
class ExperimentResultsApi(StaffApi):
    def get(self, request, key: str):
        site = self.site_or_400(request)
        experiment = Experiment.objects.select_related("winner").filter(site=site, key=key).first()
        if experiment is None:
            raise NotFound(f"No experiment '{key}' for this site.", code="experiment_not_found")
        return Response(experiment_report(experiment=experiment))
