from django.urls import path

from analytics.api import ExperimentResultsApi
from analytics.scarcity_api import ScarcityEffectivenessApi

urlpatterns = [
    path("experiments/<slug:key>", ExperimentResultsApi.as_view(), name="analytics-experiment"),
    path("scarcity", ScarcityEffectivenessApi.as_view(), name="analytics-scarcity"),
]
