"""Dashboard pages (staff only): parse the filters, build each chart's table, render the figures.

Every page takes the filters of :mod:`analytics.filters` as GET parameters. Each chart
has a stable key: its container is ``<div id="chart-<key>" data-chart="<key>">`` and its
numbers download as CSV from the same URL with ``?format=csv&chart=<key>`` (plus the
page's filters). Bad filters answer 400 naming the field, on the page and in the CSV.
Pages and charts are declared in :mod:`analytics.dashboards`, figures drawn by :mod:`analytics.charts`.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from analytics.dashboards import PAGES, Page
from analytics.filters import Filters, filters_parse
from journeys.models import DeviceType, JourneyPath, Site


def staff_only(view):
    """Anonymous users go to the admin login; signed-in users who are not staff get 403."""

    @wraps(view)
    def checked(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return checked


def _errors(error: ValidationError) -> dict[str, list[str]]:
    return {field: [str(message) for message in messages] for field, messages in error.detail.items()}


def _csv_error(errors: dict[str, list[str]], status: int = 400) -> HttpResponse:
    text = "".join(f"{field}: {' '.join(messages)}\n" for field, messages in errors.items())
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _context(request: HttpRequest, page: Page, **extra) -> dict:
    return {
        **admin.site.each_context(request),
        "title": page.title,
        "page": page,
        "dashboard_pages": [
            {"url": reverse(f"dashboards:{other.slug}"), "title": other.title, "active": other.slug == page.slug}
            for other in PAGES
        ],
        "filter_options": {
            "sites": list(Site.objects.order_by("name", "id").values_list("id", "name")),
            "devices": DeviceType.values,
            "paths": JourneyPath.values,
        },
        "params": request.GET,
        **extra,
    }


def _csv(page: Page, filters: Filters, key: str) -> HttpResponse:
    chart = next((chart for chart in page.charts(filters) if chart.key == key), None)
    if chart is None:
        return _csv_error({"chart": [f"'{key}' is not a chart of the {page.title} page for these filters."]}, 404)
    response = HttpResponse(chart.table().to_csv(), content_type="text/csv; charset=utf-8")
    filename = f"{key}_{filters.date_from.isoformat()}_{filters.date_to.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def dashboard(request: HttpRequest, *, page: Page) -> HttpResponse:
    """The page, or with ``format=csv`` the table of its chart ``chart``; 400 naming the field on bad filters."""
    try:
        filters = filters_parse(request.GET)
    except ValidationError as error:
        errors = _errors(error)
        if request.GET.get("format") == "csv":
            return _csv_error(errors)
        return render(request, page.template, _context(request, page, filter_errors=errors), status=400)
    if request.GET.get("format") == "csv":
        return _csv(page, filters, request.GET.get("chart") or "")
    query = filters.as_query()
    sections = [
        {
            "section": section,
            "charts": [
                chart.rendered(csv_url="?" + urlencode({**query, "format": "csv", "chart": chart.key}))
                for chart in section.charts
            ],
        }
        for section in page.sections(filters)
    ]
    has_data = any(chart.figure is not None for section in sections for chart in section["charts"])
    return render(
        request, page.template, _context(request, page, filters=filters, sections=sections, has_data=has_data)
    )


def page_view(page: Page):
    view = staff_only(lambda request: dashboard(request, page=page))
    view.__name__ = view.__qualname__ = f"{page.slug}_dashboard"
    return view
