"""Builders for journey API calls, model factories, and database probes used by the journey tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import factory
from django.db import connection
from factory.django import DjangoModelFactory

from journeys.models import (
    ConversionEvent,
    CrossDeviceLink,
    IdempotencyConflict,
    JourneySession,
    PersonaChange,
    QuarantinedEvent,
    StageTransition,
    Touchpoint,
    Visitor,
)

EVENTS_URL = "/api/v1/events"

JOURNEY_MODELS = (
    Visitor,
    JourneySession,
    Touchpoint,
    StageTransition,
    ConversionEvent,
    PersonaChange,
    CrossDeviceLink,
    QuarantinedEvent,
    IdempotencyConflict,
)


def start(api, session_id, *, device="mobile", source="tiktok", returning=None, visitor_id=None, **fields):
    """``POST /api/v1/sessions`` with the smallest valid body plus ``fields``.

    ``device`` is a device type, or the whole ``device`` object.
    """
    body = {
        "session_id": session_id,
        "visitor_id": visitor_id or f"v-{session_id}",
        "device": device if isinstance(device, dict) else {"type": device},
        "entry_point": {"source": source},
        **fields,
    }
    if returning is not None:
        body["returning"] = returning
    return api.post("/api/v1/sessions", body, format="json")


def move(api, session_id, new_stage, **fields):
    """``POST /api/v1/sessions/{session_id}/stage``."""
    return api.post(f"/api/v1/sessions/{session_id}/stage", {"new_stage": new_stage, **fields}, format="json")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(session_id: str, /, **fields) -> dict:
    """A valid touchpoint of ``session_id`` with a fresh event id, timestamped a minute ago."""
    return {
        "event_id": str(uuid.uuid4()),
        "session_id": session_id,
        "type": "page_view",
        "timestamp": iso(datetime.now(UTC) - timedelta(minutes=1)),
        "page_url": "https://shop.example/p/1",
        **fields,
    }


def post_events(api, events: list):
    return api.post(EVENTS_URL, {"events": events}, format="json")


def row_counts() -> dict[str, int]:
    """Rows per journey table, to show that a refused request wrote nothing."""
    return {model.__name__: model.objects.count() for model in JOURNEY_MODELS}


def tables_containing(text: str) -> list[str]:
    """Names of every table in the database with a row whose text contains ``text`` (any case)."""
    found = []
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names()):
            quoted = connection.ops.quote_name(table)
            cursor.execute(
                f"SELECT 1 FROM {quoted} AS t WHERE strpos(lower(t::text), lower(%s)) > 0 LIMIT 1",
                [text],
            )
            if cursor.fetchone():
                found.append(table)
    return found


class VisitorFactory(DjangoModelFactory):
    class Meta:
        model = Visitor

    visitor_id = factory.Sequence(lambda n: f"v-{n}")


class JourneySessionFactory(DjangoModelFactory):
    """A session started an hour ago and active until ``last_activity_at``."""

    class Meta:
        model = JourneySession

    visitor = factory.SubFactory(VisitorFactory, site=factory.SelfAttribute("..site"))
    session_id = factory.Sequence(lambda n: f"s-{n}")
    device_type = "mobile"
    source = "tiktok"
    journey_path = "mobile_tiktok_fast_track"
    conversion_probability = 0.15
    started_at = factory.LazyFunction(lambda: datetime.now(UTC) - timedelta(hours=1))
    last_activity_at = factory.LazyAttribute(lambda s: s.started_at)
    request_hash = "0" * 32


class TouchpointFactory(DjangoModelFactory):
    class Meta:
        model = Touchpoint

    session = factory.SubFactory(JourneySessionFactory)
    site = factory.SelfAttribute("session.site")
    event_id = factory.LazyFunction(uuid.uuid4)
    sequence = factory.Sequence(lambda n: n + 1)
    type = "page_view"
    page_url = "https://shop.example/"
    client_timestamp = factory.LazyAttribute(lambda t: t.session.last_activity_at)
    received_at = factory.LazyAttribute(lambda t: t.session.last_activity_at)
    payload_hash = "0" * 32
