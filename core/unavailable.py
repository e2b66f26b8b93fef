"""PostgreSQL is the record: while it cannot be reached, every request answers 503, never 500.

A request that fails because the database is unreachable, restarting or out of
connections answers ``503 Service Unavailable`` with ``Retry-After``
(``DB_RETRY_AFTER_SECONDS``): a JSON body ``{"detail": ..., "code":
"database_unavailable"}`` on the API and every JSON endpoint, a short HTML page on
the admin and dashboards. Two places catch it: :class:`DatabaseUnavailableMiddleware`
for what a view raises (DRF re-raises what its exception handler does not map), and the
500 handler (``core/api_errors.json_500``) for what another middleware raises (the
session or authentication middleware reading the database). Other database errors (a
deadlock, a constraint) stay 500s: they are defects, not outages.

After PostgreSQL returns, ``CONN_HEALTH_CHECKS`` (settings) makes each persistent
connection check itself before a request's first query, so the first request succeeds
instead of failing on a connection the restart closed; one closed in the middle of a
request is dropped at its end (``close_if_unusable_or_obsolete``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

# SQLSTATE classes and codes meaning "the server cannot be reached or takes no work now":
# connection exceptions (08), insufficient resources (53: too many connections, disk
# full), operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03
# cannot connect now: starting up or shutting down).
_UNAVAILABLE_CLASSES = ("08", "53")
_UNAVAILABLE_CODES = frozenset({"57P01", "57P02", "57P03"})

PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Service unavailable - Journey Engine</title>
<body style="font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem; color: #222">
<h1 style="font-size: 1.5rem">Service unavailable</h1>
<p>Journey Engine cannot reach its database right now, so nothing was saved.
Try again in {seconds} seconds.</p></body></html>"""
DETAIL = "The database is unavailable; nothing was stored. Retry after the number of seconds in Retry-After."


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says that PostgreSQL cannot be reached (not a query's own failure)."""
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    # A failed connection attempt or a broken socket carries no SQLSTATE.
    return sqlstate is None or sqlstate[:2] in _UNAVAILABLE_CLASSES or sqlstate in _UNAVAILABLE_CODES


def wants_json(request) -> bool:
    if request.path.startswith("/api/"):
        return True
    accept = request.META.get("HTTP_ACCEPT", "")
    return "text/html" not in accept


def unavailable_response(request, error: BaseException) -> HttpResponse:
    logger.warning("503 on %s %s: database unavailable (%s)", request.method, request.path, error)
    retry_after = str(settings.DB_RETRY_AFTER_SECONDS)
    if wants_json(request):
        response = JsonResponse({"detail": DETAIL, "code": "database_unavailable"}, status=503)
    else:
        response = HttpResponse(PAGE.format(seconds=retry_after), status=503)
    response["Retry-After"] = retry_after
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """A view's database outage becomes a 503 with ``Retry-After`` (see the module docstring)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if database_unavailable(exception):
            return unavailable_response(request, exception)
        return None


def document_503(result, generator, request, public):
    """drf-spectacular hook: every operation of the schema documents the 503 it answers without PostgreSQL."""
    response = {
        "description": "The database is unavailable (`database_unavailable`); nothing was stored. "
        "Send the same request again after `Retry-After` seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("503", response)
    return result
