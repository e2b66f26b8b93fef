"""Degrade, never crash: the request paths without Redis, and 503 instead of 500 without PostgreSQL.

"Down" here is a real server that is not there: the cache (or the database connection)
pointed at a local port where nothing listens, so every connection attempt is refused as
it would be by a stopped server. The fault suite (tests/faults/) stops real servers under
a production-style deployment.
"""

from __future__ import annotations

import socket
import uuid
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

import core.health
from analytics import monitor
from core.config_cache import VersionedCache, bump, current_version
from core.redis_breaker import breaker
from journeys.models import ConversionEvent, JourneySession, StageTransition, Touchpoint
from personalization.models import ContentVariant, Slot, TriggerType
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from tests.journeys.helpers import event, move, post_events, start
from tests.personalization.helpers import approved, make_people
from tests.personalization.scarcity_helpers import cues, live_offer, make_rule, visit


def closed_port() -> int:
    """A local port where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_down(settings, monkeypatch):
    """The cache and the request paths' own Redis clients (the monitor's snapshot, the readiness probe)
    point at a Redis that is not there; the breaker starts closed and retries at once."""
    breaker.reset()
    real = settings.CACHES
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    settings.REDIS_RETRY_SECONDS = 0
    settings.CACHES = {"default": {**real["default"], "LOCATION": dead}}
    settings.REDIS_URL = dead
    monkeypatch.setattr(monitor, "_sync_redis", None)
    core.health.redis_client.cache_clear()

    def recover() -> None:
        settings.CACHES = real

    yield recover
    breaker.reset()
    core.health.redis_client.cache_clear()


@pytest.fixture
def people(db, django_user_model):
    return make_people(django_user_model)


@pytest.fixture
def hero(site, people):
    """A slot whose approved default variant is ``hero-default``."""
    slot = Slot.objects.create(site=site, key="hero", name="Hero")
    variant = ContentVariant.objects.create(
        site=site, slot=slot, key="hero-default", name="Default", payload={"headline": "Hi"}, is_default=True
    )
    approved(variant, people)
    VersionedCache.clear_all()
    return slot


def test_without_redis_sessions_stages_events_conversions_and_decisions_work_on_postgresql(site, api, hero, redis_down):
    started = start(api, "s-1", slots=["hero"], consent={"personalization": True})
    moved = move(api, "s-1", "consideration", trigger_event="gallery")
    events = post_events(api, [event("s-1"), event("s-1")])
    converted = api.post(
        "/api/v1/sessions/s-1/conversions",
        {"event_id": str(uuid.uuid4()), "type": "purchase", "value": "49.90", "currency": "EUR"},
        format="json",
    )
    decided = api.post("/api/v1/decide", {"session_id": "s-1", "slots": ["hero"]}, format="json")

    assert [started.status_code, moved.status_code, events.status_code, converted.status_code] == [201, 200, 200, 201]
    assert decided.status_code == 200, decided.json()
    assert started.json()["decision"]["slots"]["hero"]["variant"] == "hero-default"
    assert decided.json()["slots"]["hero"]["variant"] == "hero-default"
    assert breaker.down
    session = JourneySession.objects.get(session_id="s-1")
    assert session.current_stage == "conversion"
    assert Touchpoint.objects.filter(session=session).count() == 2
    assert list(ConversionEvent.objects.values_list("value", flat=True)) == [Decimal("49.90")]
    assert list(StageTransition.objects.filter(session=session).values_list("to_stage", flat=True)) == [
        "awareness",
        "consideration",
        "conversion",
    ]


def test_an_unknown_key_without_redis_is_refused_with_401(db, redis_down):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_SITE_KEY="pk_nobody")

    response = post_events(client, [event("s-1")])

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_site_key"


def test_without_redis_the_last_known_configuration_is_served_and_reloaded_at_a_bounded_rate(db, settings, redis_down):
    loads = []
    cached = VersionedCache("test-degrade", lambda: loads.append(len(loads)) or len(loads))
    settings.CONFIG_FALLBACK_RELOAD_SECONDS = 3600

    first = cached.get()
    again = [cached.get(check_now=True) for _ in range(5)]

    assert (first, again, len(loads)) == (1, [1, 1, 1, 1, 1], 1)

    settings.CONFIG_FALLBACK_RELOAD_SECONDS = 0
    assert cached.get(check_now=True) == 2  # the bound passed: reloaded from the loader (PostgreSQL)

    # When Redis answers again, the value loaded without a version is reloaded once
    redis_down()
    settings.CONFIG_FALLBACK_RELOAD_SECONDS = 3600
    assert [cached.get(check_now=True), cached.get(check_now=True)] == [3, 3]
    VersionedCache.instances.remove(cached)


def test_an_invalidation_made_while_redis_is_down_is_sent_when_it_answers(
    db, redis_down, django_capture_on_commit_callbacks
):
    loads = []
    cached = VersionedCache("test-bump", lambda: loads.append(len(loads)) or len(loads))
    assert (cached.get(), current_version("test-bump")) == (1, None)  # Redis cannot be read

    with django_capture_on_commit_callbacks(execute=True):
        bump("test-bump")

    assert cached.get() == 2  # this process reloads at once
    redis_down()  # Redis answers again: the first read that reaches it sends the bump
    assert current_version("test-bump") == 0
    assert current_version("test-bump") == 1
    assert not breaker.down
    VersionedCache.instances.remove(cached)


def test_without_redis_cues_are_shown_from_the_evidence_stored_in_postgresql(site, api, people, redis_down):
    now = timezone.now()
    offer = live_offer(site, people, stock=3, stock_at=now)
    make_rule(site, offer, TriggerType.LOW_STOCK, people)
    visit(api, "s-viewer")
    VersionedCache.clear_all()

    assert scarcity_evidence_refresh(now=now) == 1  # stored in PostgreSQL; Redis refused

    assert [cue["message"] for cue in cues("s-viewer", now=now)] == ["Only 3 left"]
    assert breaker.down


def test_without_redis_and_without_stored_evidence_no_cue_is_shown(site, api, people, redis_down):
    now = timezone.now()
    offer = live_offer(site, people, stock=3, stock_at=now)
    make_rule(site, offer, TriggerType.LOW_STOCK, people)
    visit(api, "s-viewer")
    VersionedCache.clear_all()

    assert cues("s-viewer", now=now) == []


def test_the_readiness_probe_names_redis_as_down_and_stays_ready(client, db, redis_down):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "database": "ok",
        "redis": "error: ConnectionError",
        "down": ["redis"],
    }


# --- PostgreSQL down -------------------------------------------------------------------


# Committed data, as with a real outage; serialized rollback restores the migrations' data (groups)
# the way the suite's other transactional tests do.
TRANSACTIONAL = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def database_down():
    """This process's connection points at a PostgreSQL that is not there; restored after the test."""
    cache.clear()
    VersionedCache.clear_all()
    real_port = connection.settings_dict["PORT"]
    real_host = connection.settings_dict["HOST"]

    def down() -> None:
        connection.close()
        connection.settings_dict["HOST"] = "127.0.0.1"
        connection.settings_dict["PORT"] = str(closed_port())

    def up() -> None:
        connection.close()
        connection.settings_dict["HOST"] = real_host
        connection.settings_dict["PORT"] = real_port

    yield down, up
    up()


@TRANSACTIONAL
def test_without_postgresql_the_api_answers_503_with_retry_after_and_json(site, client_for, database_down, settings):
    down, up = database_down
    api = client_for(site)
    down()

    responses = {
        "events": post_events(api, [event("s-1")]),
        "session": start(api, "s-1"),
        "stage": move(api, "s-1", "consideration"),
        "decide": api.post("/api/v1/decide", {"session_id": "s-1", "slots": ["hero"]}, format="json"),
    }

    for name, response in responses.items():
        retry_after = str(settings.DB_RETRY_AFTER_SECONDS)
        assert (name, response.status_code, response["Retry-After"]) == (name, 503, retry_after)
        assert response.json() == {
            "detail": "The database is unavailable; nothing was stored. "
            "Retry after the number of seconds in Retry-After.",
            "code": "database_unavailable",
        }

    # When it is back, the first request succeeds
    up()
    assert start(api, "s-1").status_code == 201


@TRANSACTIONAL
def test_without_postgresql_the_pages_and_the_probe_answer_503(database_down, client, admin_user):
    down, up = database_down
    client.force_login(admin_user)
    down()

    admin = client.get("/admin/", HTTP_ACCEPT="text/html")
    dashboard = client.get("/dashboards/", HTTP_ACCEPT="text/html")
    ready = client.get("/readyz")

    assert (admin.status_code, admin["Retry-After"], admin["Content-Type"]) == (503, "5", "text/html; charset=utf-8")
    assert b"cannot reach its database right now, so nothing was saved" in admin.content
    assert (dashboard.status_code, dashboard["Retry-After"]) == (503, "5")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not_ready",
        "database": "error: OperationalError",
        "redis": "ok",
        "down": ["database"],
    }
    up()
    assert client.get("/admin/").status_code == 200


def parameterless_paths() -> list[str]:
    """Every URL of the project that takes no parameter (the admin's lists and add pages included)."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from django.urls.resolvers import RoutePattern

    def walk(patterns, prefix: str):
        for pattern in patterns:
            if not isinstance(pattern.pattern, RoutePattern):
                continue  # the admin's app index and the like: a regular expression with groups
            route = prefix + str(pattern.pattern)
            if "<" in route:
                continue
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield "/" + route

    return sorted(set(walk(get_resolver().url_patterns, "")))


def test_without_redis_no_page_or_endpoint_answers_5xx(site, hero, client, admin_user, redis_down):
    client.force_login(admin_user)
    paths = parameterless_paths()

    answers = {path: client.get(path, HTTP_ACCEPT="text/html", HTTP_X_SITE_KEY=site.public_key) for path in paths}

    assert len(paths) > 40  # the admin's pages, the dashboards, the APIs
    assert {path: r.status_code for path, r in answers.items() if r.status_code >= 500} == {}
    assert answers["/dashboards/"].status_code == answers["/admin/"].status_code == 200
    snapshot = client.get("/dashboards/monitor/snapshot?site=all").json()
    assert (snapshot["epoch"], snapshot["seq"]) == ("redis-unavailable", 0)


def test_the_api_schema_documents_the_503_of_every_operation(db, client):
    schema = client.get("/api/schema/", {"format": "json"}).json()

    operations = [operation for path in schema["paths"].values() for operation in path.values()]
    assert len(operations) >= 15
    assert [op["operationId"] for op in operations if "503" not in op["responses"]] == []
    events = schema["paths"]["/api/v1/events"]["post"]["responses"]["503"]
    assert events["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
    assert list(events["headers"]) == ["Retry-After"]
