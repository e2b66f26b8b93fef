"""The benchmark's reference point: a bare Django endpoint doing one indexed read.

Mounted only by the benchmark servers' URLconf (:mod:`devtools.bench_urls`). The
decision endpoint's throughput is compared with this one's on the same server in the
same run (PRODUCT.md section 9).
"""

from __future__ import annotations

from django.http import JsonResponse

from journeys.models import JourneySession


def indexed_read(request):
    """One read through the (site, session_id) unique index, answered as JSON."""
    row = (
        JourneySession.objects.filter(site_id=request.GET.get("site", 0), session_id=request.GET.get("session_id", ""))
        .values_list("pk", "current_stage")
        .first()
    )
    if row is None:
        return JsonResponse({"detail": "No such session."}, status=404)
    return JsonResponse({"id": row[0], "current_stage": row[1]})
