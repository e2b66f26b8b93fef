"""Dashboard pages (staff only), namespace ``dashboards``.

Each page's charts export as CSV from the page's own URL: ``?format=csv&chart=<key>``
with the page's filters (see :mod:`analytics.views`).
"""

from django.urls import path

from analytics.dashboards import PAGES
from analytics.views import page_view

app_name = "dashboards"
urlpatterns = [
    path("" if page.slug == "overview" else f"{page.slug}/", page_view(page), name=page.slug) for page in PAGES
]
