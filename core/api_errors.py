"""Every API error is JSON that names the field or carries a code; never an HTML 500 page.

Django's own error answers (400, 403, 404, 500: ``config/urls.py`` wires them here) are
JSON too, except 400 and 403 on the pages people read in a browser (admin, dashboards).
A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413 (``body_too_large``) wherever it
is noticed.
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.exceptions import DisallowedHost, PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from core.serializers import InputRefused, body_too_large
from core.unavailable import database_unavailable, unavailable_response

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, RequestDataTooBig):
        # Django refuses a body past DATA_UPLOAD_MAX_MEMORY_SIZE the moment it is read.
        exc = body_too_large(_declared_length(context["request"]), settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        exc = InputRefused(415, str(exc.detail), "unsupported_media_type", "Content-Type")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, dict) and "detail" in response.data and "code" not in response.data:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else None
        response.data["code"] = getattr(detail, "code", None) or _default_code(exc)
    if isinstance(exc, InputRefused):
        response.data["field"] = exc.field
    return response


def _declared_length(request) -> int:
    declared = str(request.META.get("CONTENT_LENGTH") or "")
    return int(declared) if declared.isdigit() else settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1


def _default_code(exc) -> str:
    if isinstance(exc, Http404):
        return "not_found"
    if isinstance(exc, PermissionDenied):
        return "permission_denied"
    return getattr(exc, "default_code", "error")


def _html_page(request) -> bool:
    """Pages people read in a browser (admin, dashboards) keep Django's HTML error pages."""
    return request.path.startswith(HTML_PREFIXES)


HTML_PREFIXES = ("/admin/", "/dashboards/")


def json_400(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        body = {
            "detail": f"The body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            "code": "body_too_large",
            "field": "body",
        }
        return JsonResponse(body, status=413)
    if _html_page(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        host = request.META.get("HTTP_HOST", "")
        body = {"detail": f"Host '{host}' is not served here.", "code": "disallowed_host", "field": "Host"}
        return JsonResponse(body, status=400)
    return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)


def json_403(request, exception=None):
    if _html_page(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse({"detail": "Permission denied.", "code": "permission_denied"}, status=403)


def json_404(request, exception=None):
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def json_500(request):
    """Django's 500 handler; a database outage raised outside a view (by a middleware) is a 503."""
    error = sys.exc_info()[1]
    if error is not None and database_unavailable(error):
        return unavailable_response(request, error)
    logger.error("Unhandled error on %s", request.path)
    return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
