"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import functools

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse


@functools.cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT, socket_timeout=2
    )


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Ready (200) when PostgreSQL answers; each dependency's state named in the JSON.

    ``{"status": "ready", "database": "ok", "redis": "ok", "down": []}``. PostgreSQL is the
    record: without it the process can serve nothing, so ``not_ready`` and 503. Without
    Redis it serves every request from PostgreSQL and process memory
    (``core/redis_breaker.py``): ``degraded`` and still 200, so a load balancer does not
    take every web process out of service for an outage none of them can fix.
    """
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
    down = [name for name, value in checks.items() if value != "ok"]
    status = "not_ready" if "database" in down else "degraded" if down else "ready"
    return JsonResponse(
        {"status": status, **checks, "down": down},
        status=503 if status == "not_ready" else 200,
        headers={"Cache-Control": "no-store"},
    )
