"""Staff analytics API over the rollups: ``GET /api/v1/analytics/{overview,funnel,...}``.

Each endpoint answers with the tables of :mod:`analytics.queries` that the matching
dashboard page plots, so the numbers are the page's. Query parameters are the
dashboard filters (``date_from``, ``date_to``, ``site``, ``device``, ``path``,
``persona``); a bad one is a 400 naming it (``{"date_from": ["..."]}``).

Shape: ``{"filters": {...}, "tables": {key: {"title", "columns", "rows"}}}``; with
``?shape=records`` each table is a list of ``{column: value}`` objects instead. Days
are ISO dates, money is a decimal string (``"12.50"``), rates are floats or null.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.response import Response

from analytics.api_schema import STAFF_AUTH, DashboardPageOut
from analytics.filters import BIGINT_MAX, DEFAULT_DAYS, MAX_DAYS, filters_parse
from analytics.queries import page_tables
from analytics.tables import Table
from journeys import api_schema as doc
from journeys.api import StaffApi
from journeys.models import DeviceType, JourneyPath

FILTER_PARAMETERS = [
    OpenApiParameter(
        "date_from",
        OpenApiTypes.DATE,
        description=f"first day (YYYY-MM-DD, UTC), inclusive; default {DEFAULT_DAYS - 1} days before date_to",
    ),
    OpenApiParameter(
        "date_to",
        OpenApiTypes.DATE,
        description=f"last day (YYYY-MM-DD, UTC), inclusive; default today; at most {MAX_DAYS} days in all",
    ),
    OpenApiParameter(
        "site",
        {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX},
        description="site id; all sites when left out",
    ),
    OpenApiParameter("device", str, enum=DeviceType.values),
    OpenApiParameter("path", str, enum=JourneyPath.values, description="journey path"),
    OpenApiParameter("persona", {"type": "string", "maxLength": 50}, description="persona type"),
    OpenApiParameter("shape", str, enum=["tables", "records"], description="tables (default) or records"),
]


def cell_out(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def table_out(table: Table, *, records: bool):
    rows = [[cell_out(value) for value in row] for row in table.rows]
    if records:
        return [dict(zip(table.columns, row, strict=True)) for row in rows]
    return {"title": table.title, "columns": table.columns, "rows": rows}


def page_out(page: str, params) -> dict:
    shape = params.get("shape") or "tables"
    if shape not in ("tables", "records"):
        raise serializers.ValidationError({"shape": [f"'{shape}' is not one of records, tables."]})
    filters = filters_parse(params)
    tables = page_tables(page, filters)
    return {
        "filters": {
            "date_from": filters.date_from.isoformat(),
            "date_to": filters.date_to.isoformat(),
            "site": filters.site_id,
            "device": filters.device,
            "path": filters.path,
            "persona": filters.persona,
        },
        "tables": {table.key: table_out(table, records=shape == "records") for table in tables},
    }


class DashboardPageApi(StaffApi):
    page = ""

    def get(self, request):
        return Response(page_out(self.page, request.query_params))


PAGE_EXAMPLE = {
    "filters": {
        "date_from": "2026-10-24",
        "date_to": "2026-11-21",
        "site": None,
        "device": None,
        "path": None,
        "persona": None,
    },
    "tables": {
        "funnel": {
            "title": "Sessions reaching each stage",
            "columns": ["stage", "sessions", "rate"],
            "rows": [["awareness", 3, 1.0], ["consideration", 2, 0.667], ["decision", 1, 0.333]],
        }
    },
}


def _endpoint(page: str, summary: str) -> type[DashboardPageApi]:
    view = type(
        f"{page.title().replace('_', '')}Api",
        (DashboardPageApi,),
        {"page": page, "__doc__": summary, "__module__": __name__},
    )
    schema = extend_schema(
        operation_id=f"analytics_{page}",
        summary=summary,
        tags=["analytics"],
        description=f"{summary} The tables the `{page}` dashboard page plots, from the rollups (up to a minute "
        "behind), for the filters given; a bad filter is a 400 naming it. With `shape=records` each table is a "
        "list of `{column: value}` objects instead. " + STAFF_AUTH,
        parameters=FILTER_PARAMETERS,
        responses={
            200: DashboardPageOut,
            **doc.staff_errors(bad_request="A filter is not valid: named, with the reason."),
        },
        examples=[
            OpenApiExample("Tables", response_only=True, status_codes=["200"], value=PAGE_EXAMPLE),
            OpenApiExample(
                "Bad filter",
                response_only=True,
                status_codes=["400"],
                value={"date_from": ["'yesterday' is not a date (YYYY-MM-DD)."]},
            ),
        ],
    )
    return extend_schema_view(get=schema)(view)


OverviewApi = _endpoint("overview", "Overview: totals, sessions/conversion/revenue per day, funnel, paths.")
FunnelApi = _endpoint("funnel", "Sessions reaching each stage, and the drop-off between stages.")
TimeseriesApi = _endpoint("timeseries", "Per day: sessions, conversions, revenue, cross-device share.")
JourneysApi = _endpoint("journeys", "Stage flows per path, paths compared, time to convert, cross-device, personas.")
PersonalizationApi = _endpoint("personalization", "Per personalization type and strategy: use, engagement, outcome.")
AllocationApi = _endpoint("allocation", "Per day, experiment and variant: exposures (traffic allocation), conversions.")
ScarcityDailyApi = _endpoint(
    "scarcity_daily", "Per scarcity rule, and per day and rule: impressions, exposed vs holdout conversion and lift."
)
