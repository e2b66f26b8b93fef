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
    "p_value_holm": None,
    "sequential_p_value_holm": None,
    "enough_data": None,
    "reason": None,
    "significant": None,
    "sequential_ready": None,
    "sequential_significant": None,
    "period_weighted_rate": None,
}


def metric_example(metric: str, label: str, unit: str, value: float, **change) -> dict:
    return {
        "metric": metric,
        "label": label,
        "unit": unit,
        "value": value,
        "relative_change": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "enough_data": None,
        "significant": False,
        "worse": False,
        **change,
    }


def arm_example(*, total: str, orders: int, per_session: dict, aov: dict, guardrails: list[dict]) -> dict:
    return {
        "revenue": {
            "currency": "EUR",
            "total": total,
            "orders": orders,
            "other_currency_orders": 0,
            "per_session": per_session,
            "average_order_value": aov,
        },
        "guardrails": guardrails,
    }


CONTROL_METRICS = arm_example(
    total="1000.00",
    orders=20,
    per_session=metric_example("revenue_per_session", "revenue per session", "currency", 5.0, p_value_holm=None),
    aov=metric_example("average_order_value", "average order value", "currency", 50.0),
    guardrails=[
        metric_example("bounce_rate", "bounce rate", "percent", 0.2),
        metric_example("refund_rate", "refund or cancellation rate", "percent", 0.01),
        metric_example("time_to_convert", "time to convert", "seconds", 240.0),
    ],
)
COMPARED = {"enough_data": True, "significant": False, "worse": False}
TREATMENT_METRICS = arm_example(
    total="2750.00",
    orders=50,
    per_session=metric_example(
        "revenue_per_session",
        "revenue per session",
        "currency",
        13.75,
        relative_change=1.75,
        ci_low=0.98,
        ci_high=2.52,
        p_value=0.0001,
        p_value_holm=0.0001,
        **{**COMPARED, "significant": True},
    ),
    aov=metric_example(
        "average_order_value",
        "average order value",
        "currency",
        55.0,
        relative_change=0.1,
        ci_low=-0.04,
        ci_high=0.24,
        p_value=0.16,
        **COMPARED,
    ),  # fmt: skip
    guardrails=[
        metric_example(
            "bounce_rate",
            "bounce rate",
            "percent",
            0.3,
            relative_change=0.5,
            ci_low=0.12,
            ci_high=0.88,
            p_value=0.01,
            **{**COMPARED, "significant": True, "worse": True},
        ),  # fmt: skip
        metric_example(
            "refund_rate",
            "refund or cancellation rate",
            "percent",
            0.01,
            relative_change=0.0,
            ci_low=-0.9,
            ci_high=0.9,
            p_value=1.0,
            **COMPARED,
        ),  # fmt: skip
        metric_example(
            "time_to_convert",
            "time to convert",
            "seconds",
            250.0,
            relative_change=0.04,
            ci_low=-0.1,
            ci_high=0.18,
            p_value=0.55,
            **COMPARED,
        ),  # fmt: skip
    ],
)


@extend_schema_view(
    get=extend_schema(
        operation_id="experiment_results",
        summary="An experiment's results",
        tags=["analytics"],
        description="Per variant of the experiment `key` of the site named by `X-Site-Key`: exposures, "
        "conversions, rate, the relative lift over control with its credible, confidence and always-valid "
        "intervals, the chances to beat control and to be best, and the expected loss; p-values Holm-adjusted "
        "over the treatments beside the raw ones; revenue per session and average order value in the "
        "experiment's currency; guardrails (bounce rate, refund or cancellation rate, time to convert; "
        "`worse` when significantly worse than the control: it blocks a winner proposal); the sample still "
        "needed; a plain `verdict`; the sample-ratio test; and the optimizer's proposals waiting for approval. "
        "Rates, changes and intervals are fractions (0.12 = +12%). The same numbers as the experiments dashboard. "
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
                "Treatment converts more but bounces more",
                response_only=True,
                status_codes=["200"],
                value={
                    "experiment": "hero-test",
                    "status": "running",
                    "allocation": "fixed",
                    "primary_goal": "purchase",
                    "primary_metric": "conversion rate: exposed sessions with a purchase at or after exposure "
                    "÷ exposed sessions",
                    "minimum_sample": 100,
                    "winner": None,
                    "currency": "EUR",
                    "verdict": {
                        "kind": "guardrail",
                        "text": "guardrail bounce rate worse for hero-b (bounce rate +50%, 95% interval +12% to +88%)",
                        "variant": "hero-b",
                    },
                    "sample_size": {
                        "metric": "conversion rate",
                        "mde": 0.1,
                        "power": 0.8,
                        "alpha": 0.05,
                        "baseline_rate": 0.1,
                        "per_arm": 35277,
                        "more_per_arm": 35077,
                        "sequential": True,
                    },
                    "winner_rule": "winner: an active treatment whose always-valid (sequential) p-value ...",
                    "period_weighted": False,
                    "variants": [
                        {**VARIANT_EXAMPLE, **CONTROL_METRICS},
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
                            "p_value_holm": 0.0001,
                            "sequential_p_value_holm": 0.002,
                            "enough_data": True,
                            "reason": None,
                            "significant": True,
                            "sequential_ready": True,
                            "sequential_significant": True,
                            **TREATMENT_METRICS,
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
