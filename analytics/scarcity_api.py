"""Staff analytics API: scarcity cue effectiveness (``GET /api/v1/analytics/scarcity``)."""

from __future__ import annotations

from datetime import datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.response import Response

from analytics.api_schema import STAFF_AUTH, ScarcityReportOut
from analytics.reports import scarcity_report
from journeys import api_schema as doc
from journeys.api import StaffApi


def _moment(name: str, value: str | None) -> datetime | None:
    """An ISO date (its midnight) or datetime; naive values are in ``TIME_ZONE``."""
    if not value:
        return None
    try:
        # Both answer None for text in another format, and raise for a well-formed but
        # impossible date (month 13).
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.combine(day, time.min) if day is not None else None
    except ValueError:
        moment = None
    if moment is None:
        raise serializers.ValidationError({name: ["Expected an ISO 8601 date or date-time."]})
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


@extend_schema_view(
    get=extend_schema(
        operation_id="scarcity_effectiveness",
        summary="Scarcity cues' effect on conversion",
        tags=["analytics"],
        description="Per scarcity rule of the site named by `X-Site-Key`: impressions, the conversion of sessions "
        "that saw the cue against the held-out sessions that were eligible but did not, and the lift with its "
        "intervals. `since`/`until` bound the sessions' eligibility; `goal` is the conversion type counted. "
        + STAFF_AUTH,
        parameters=[
            doc.SITE_KEY,
            OpenApiParameter("since", str, description="ISO date or date-time; sessions eligible from then"),
            OpenApiParameter("until", str, description="ISO date or date-time, after `since`; exclusive"),
            OpenApiParameter("goal", str, description="conversion type counted (default `purchase`)"),
        ],
        responses={
            200: ScarcityReportOut,
            **doc.staff_errors(bad_request="The site is not named (`X-Site-Key`), or `since`/`until` is not valid."),
        },
        examples=[
            OpenApiExample(
                "One rule",
                response_only=True,
                status_codes=["200"],
                value={
                    "since": None,
                    "until": None,
                    "goal": "purchase",
                    "rules": [
                        {
                            "rule": "low-stock",
                            "name": "low_stock",
                            "trigger_type": "low_stock",
                            "offer": "A1",
                            "status": "live",
                            "holdout_share": 0.1,
                            "impressions": 120,
                            "sessions_shown": 90,
                            "exposed": {"sessions": 90, "conversions": 12, "rate": 0.133},
                            "holdout": {"sessions": 10, "conversions": 1, "rate": 0.1},
                            "lift": {
                                "relative_lift": 0.33,
                                "ci_low": -0.6,
                                "ci_high": 1.9,
                                "p_value": 0.76,
                                "sequential_low": -0.9,
                                "sequential_high": 4.1,
                                "credible_low": -0.5,
                                "credible_high": 2.2,
                                "chance_to_beat_holdout": 0.61,
                            },
                        }
                    ],
                },
            ),
        ],
    )
)
class ScarcityEffectivenessApi(StaffApi):
    def get(self, request):
        site = self.site_or_400(request)
        since = _moment("since", request.query_params.get("since"))
        until = _moment("until", request.query_params.get("until"))
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"until": ["Must be after since."]})
        goal = request.query_params.get("goal") or "purchase"
        return Response(scarcity_report(site=site, since=since, until=until, goal=goal))
