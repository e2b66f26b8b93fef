"""Staff analytics API: scarcity cue effectiveness (``GET /api/v1/analytics/scarcity``)."""

from __future__ import annotations

from datetime import datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from analytics.reports import scarcity_report
from journeys.api import SITE_KEY, StaffApi


def _moment(name: str, value: str | None) -> datetime | None:
    """An ISO date (its midnight) or datetime; naive values are in ``TIME_ZONE``."""
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise serializers.ValidationError({name: ["Expected an ISO 8601 date or date-time."]})
        moment = datetime.combine(day, time.min)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


@extend_schema(
    parameters=[
        SITE_KEY,
        OpenApiParameter("since", str, description="ISO date or date-time; sessions eligible from then"),
        OpenApiParameter("until", str, description="ISO date or date-time; exclusive"),
        OpenApiParameter("goal", str, description="conversion type counted (default purchase)"),
    ],
    responses={200: dict},
)
class ScarcityEffectivenessApi(StaffApi):
    """Per rule: impressions, conversion of exposed vs holdout sessions, and the lift with its intervals."""

    def get(self, request):
        site = self.site_or_400(request)
        since = _moment("since", request.query_params.get("since"))
        until = _moment("until", request.query_params.get("until"))
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"until": ["Must be after since."]})
        goal = request.query_params.get("goal") or "purchase"
        return Response(scarcity_report(site=site, since=since, until=until, goal=goal))
