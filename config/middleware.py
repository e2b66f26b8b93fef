"""Project-wide middleware."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import JsonResponse


class ServerTimingMiddleware:
    """Adds ``Server-Timing: app;dur=<ms>``: the time Django spent on the request.

    It is the outermost middleware, so the figure covers every other middleware, the
    view and the database, but not the web server's queue. Browsers show it in their
    developer tools; the benchmark reads it as the decision's server-side latency.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
        return response


class UrlLengthLimitMiddleware:
    """Answers 414 (JSON, ``url_too_long``) for a URL (path and query) longer than
    ``URL_MAX_LENGTH``, before anything routes or reads it.

    Django sets no such limit; the web servers do, with a bare error page of their own
    (gunicorn's ``limit_request_line``, 4,094 bytes for the whole request line by
    default). Ours is lower, so a client gets a JSON answer naming the limit instead;
    no URL of the API comes near it.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        length = len(request.get_full_path())
        limit = settings.URL_MAX_LENGTH
        if length > limit:
            return JsonResponse(
                {
                    "detail": f"The URL is {length} characters; the limit is {limit}.",
                    "code": "url_too_long",
                    "field": "url",
                },
                status=414,
            )
        return self.get_response(request)
