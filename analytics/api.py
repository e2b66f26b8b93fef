"""Staff analytics API: experiment results (PRODUCT.md appendix, ``GET /api/v1/analytics/experiments/{key}``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from analytics.reports import experiment_report
from journeys.api import SITE_KEY, StaffApi
from personalization.models import Experiment


@extend_schema(parameters=[SITE_KEY], responses={200: dict})
class ExperimentResultsApi(StaffApi):
    """Per variant: counts, rate, credible interval of the lift, chances, loss, p-values; SRM; pending proposals."""

    def get(self, request, key: str):
        site = self.site_or_400(request)
        experiment = Experiment.objects.select_related("winner").filter(site=site, key=key).first()
        if experiment is None:
            raise NotFound(f"No experiment '{key}' for this site.", code="experiment_not_found")
        return Response(experiment_report(experiment=experiment))
