from django.urls import path

from analytics import dashboard_api
from analytics.api import ExperimentResultsApi
from analytics.scarcity_api import ScarcityEffectivenessApi

urlpatterns = [
    path("experiments/<slug:key>", ExperimentResultsApi.as_view(), name="analytics-experiment"),
    path("scarcity", ScarcityEffectivenessApi.as_view(), name="analytics-scarcity"),
    path("overview", dashboard_api.OverviewApi.as_view(), name="analytics-overview"),
    path("funnel", dashboard_api.FunnelApi.as_view(), name="analytics-funnel"),
    path("timeseries", dashboard_api.TimeseriesApi.as_view(), name="analytics-timeseries"),
    path("journeys", dashboard_api.JourneysApi.as_view(), name="analytics-journeys"),
    path("personalization", dashboard_api.PersonalizationApi.as_view(), name="analytics-personalization"),
    path("allocation", dashboard_api.AllocationApi.as_view(), name="analytics-allocation"),
    path("scarcity/daily", dashboard_api.ScarcityDailyApi.as_view(), name="analytics-scarcity-daily"),
]
