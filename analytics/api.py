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
    "exposures": 200,
    "conversions": 20,
    "rate": 0.1,
    "ci_low": None,
    "ci_high": None,
    "chance_to_beat_control": None,
    "chance_to_be_best": 0.0,
    "expected_loss": 0.15,
    "relative_lift": None,
    "p_value": None,
    "confidence_low": None,
    "confidence_high": None,
    "sequential_low": None,
    "sequential_high": None,
    "sequential_p_value": None,
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
                            "conversions": 50,
                            "rate": 0.25,
                            "ci_low": 0.72,
                            "ci_high": 2.31,
                            "chance_to_beat_control": 0.9999,
                            "chance_to_be_best": 0.9999,
                            "expected_loss": 0.0,
                            "relative_lift": 1.5,
                            "p_value": 0.0001,
                            "confidence_low": 0.69,
                            "confidence_high": 2.31,
                            "sequential_low": 0.41,
                            "sequential_high": 2.9,
                            "sequential_p_value": 0.002,
                        },
                    ],
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
