"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import functools

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse


@functools.cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Ready when both PostgreSQL and Redis answer."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"error: {error.__class__.__name__}"
    try:
        redis_client().ping()
        checks["redis"] = "ok"
    except Exception as error:  # noqa: BLE001
        checks["redis"] = f"error: {error.__class__.__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ready" if ready else "not_ready", **checks}, status=200 if ready else 503)
