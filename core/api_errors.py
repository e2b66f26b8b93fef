"""Every API error is JSON that names the field or carries a code; never an HTML 500 page."""

from __future__ import annotations

import logging
import sys

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from core.unavailable import database_unavailable, unavailable_response

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, dict) and "detail" in response.data and "code" not in response.data:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else None
        response.data["code"] = getattr(detail, "code", None) or _default_code(exc)
    return response


def _default_code(exc) -> str:
    if isinstance(exc, Http404):
        return "not_found"
    if isinstance(exc, PermissionDenied):
        return "permission_denied"
    return getattr(exc, "default_code", "error")


def json_404(request, exception=None):
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def json_500(request):
    """Django's 500 handler; a database outage raised outside a view (by a middleware) is a 503."""
    error = sys.exc_info()[1]
    if error is not None and database_unavailable(error):
        return unavailable_response(request, error)
    logger.error("Unhandled error on %s", request.path)
    return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
