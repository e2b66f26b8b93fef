"""Project-wide middleware."""

from __future__ import annotations

import time


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
