"""The live monitor page and its snapshot endpoint (staff only).

The page (``monitor:page``) renders the frame; ``static/analytics/monitor.js`` opens
``/ws/monitor/``, subscribes to the chosen stream and loads the snapshot
(``monitor:snapshot``, ``?site=<id>`` or ``?site=all``) on connect, on reconnect and
after a gap in the sequence numbers.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from analytics import monitor
from analytics.consumers import CLOSE_NOT_AUTHENTICATED, CLOSE_NOT_STAFF
from journeys.models import Site


def _is_staff(request: HttpRequest) -> bool:
    return request.user.is_authenticated and request.user.is_active and request.user.is_staff


def _dashboard_nav() -> list[dict]:
    """The dashboards' nav with the monitor last; pages that are not routed yet are left out."""
    try:
        from analytics.dashboards import PAGES
    except ImportError:
        PAGES = []
    pages = []
    for page in PAGES:
        try:
            pages.append({"url": reverse(f"dashboards:{page.slug}"), "title": page.title, "active": False})
        except NoReverseMatch:
            continue
    return [*pages, {"url": reverse("monitor:page"), "title": "Live monitor", "active": True}]


def _site_param(value: str | None) -> tuple[int | None, str | None]:
    """``(site_id, error)``: ``all`` is None; a missing value is an error."""
    if value == monitor.ALL:
        return None, None
    if value and value.isdigit():
        return int(value), None
    return None, 'Name a site id or "all".'


@never_cache
@require_GET
def monitor_page(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not _is_staff(request):
        return HttpResponse("Staff only.", status=403, content_type="text/plain")
    sites = list(Site.objects.order_by("name", "pk").values("pk", "name"))
    chosen = request.GET.get("site") or (str(sites[0]["pk"]) if len(sites) == 1 else monitor.ALL)
    context = {
        **admin.site.each_context(request),
        "title": "Live monitor",
        "is_nav_sidebar_enabled": False,
        "dashboard_pages": _dashboard_nav(),
        "sites": sites,
        "chosen": chosen,
        "config": {
            "socket_path": "/ws/monitor/",
            "snapshot_url": reverse("monitor:snapshot"),
            "site": chosen,
            "recent_minutes": monitor.RECENT_MINUTES,
            "close_codes": {"not_authenticated": CLOSE_NOT_AUTHENTICATED, "not_staff": CLOSE_NOT_STAFF},
        },
    }
    return render(request, "analytics/monitor.html", context)


@never_cache
@require_GET
def monitor_snapshot(request: HttpRequest) -> JsonResponse:
    """``GET ?site=<id>|all``: the stream's epoch and head, the counters and the latest events."""
    if not _is_staff(request):
        return JsonResponse({"detail": "Staff only.", "code": "not_staff"}, status=403)
    site_id, error = _site_param(request.GET.get("site"))
    if error:
        return JsonResponse({"site": [error]}, status=400)
    if site_id is not None and not Site.objects.filter(pk=site_id).exists():
        return JsonResponse({"detail": f"No site {site_id}.", "code": "unknown_site"}, status=404)
    return JsonResponse(monitor.snapshot(site_id))
