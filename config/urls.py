from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from core.health import healthz, readyz
from journeys.sdk import sdk_v1

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("journeys.urls")),
    path("api/v1/", include("personalization.urls")),
    path("api/v1/analytics/", include("analytics.urls")),
    path("dashboards/", include("analytics.dashboard_urls")),
    path("dashboards/monitor/", include("analytics.monitor_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="api_docs/redoc.html"),
        name="api-redoc",
    ),
    path("sdk/v1/journey.js", sdk_v1, name="sdk-v1"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]

handler404 = "core.api_errors.json_404"
handler500 = "core.api_errors.json_500"
handler400 = "core.api_errors.json_400"
handler403 = "core.api_errors.json_403"
