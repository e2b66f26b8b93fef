"""The live monitor page and its snapshot endpoint (staff only), namespace ``monitor``."""

from django.urls import path

from analytics import monitor_views

app_name = "monitor"
urlpatterns: list = [
    path("", monitor_views.monitor_page, name="page"),
    path("snapshot", monitor_views.monitor_snapshot, name="snapshot"),
]
