"""Bad input over every endpoint: each refusal is a 4xx (never a 5xx), its body is JSON, it
names the field (or the body, the content type, the URL) or carries the code, and a
refused write wrote nothing.

The endpoints are those of ``config/urls.py`` and the apps' ``urls.py``: the browser
endpoints (public key), the stock feed (secret key), the staff endpoints (staff token)
and what answers outside them. Events a batch accepts but rejects one by one are the
contract's other kind of refusal (200, ``rejected`` naming the field, the event kept in
quarantine, no touchpoint stored): they have their own cases below.

The cases the Django test client cannot express (a ``Content-Length`` larger than the
body it sends, bytes on the wire exactly as given) run against a live server at the end.
"""

from __future__ import annotations

import http.client
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import pytest
from django.apps import apps
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from journeys.models import JourneySession, QuarantinedEvent, Touchpoint, Visitor
from journeys.services.sites import site_secret_rotate
from personalization.models import Offer
from tests.journeys.helpers import event, iso, start
from tests.personalization.helpers import make_people
from tests.personalization.scarcity_helpers import live_offer

pytestmark = pytest.mark.django_db

SESSION = "s-1"
VISITOR = "v-1"
INT32_OVER = 2_147_483_648
JSON = "application/json"
CLIENT_ID_RULE = (
    "Use 1 to 100 of the characters A-Z a-z 0-9 - _ . ~ (usable in a URL as they are), not starting with '.'."
)


def deep(levels: int, leaf: Any = 1) -> Any:
    """``levels`` nested arrays around ``leaf``."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def deep_text(levels: int) -> str:
    """The JSON text of ``levels`` nested arrays, without building them (too deep for json.dumps)."""
    return "[" * levels + "]" * levels


def big(size: int) -> dict:
    return {"blob": "x" * size}


@dataclass
class Case:
    """One bad request and what must come back.

    ``names``: the field the error is keyed by (``device.type`` for a nested one), or for a
    ``{"detail", "code"}`` answer, the ``field`` it names (``body``, ``Content-Type``, ``url``).
    """

    id: str
    method: str
    path: str
    status: int
    names: str | None = None
    code: str | None = None
    body: Any = None
    content_type: str = JSON
    auth: str = "public"
    headers: dict = field(default_factory=dict)


def session_start(**fields) -> dict:
    return {"session_id": "s-new", "visitor_id": "v-new", "device": {"type": "mobile"}, **fields}


def stage(**fields) -> dict:
    return {"new_stage": "consideration", **fields}


def conversion(**fields) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": "purchase", "value": "10.00", **fields}


def decide(**fields) -> dict:
    return {"session_id": SESSION, "slots": ["hero"], **fields}


def batch(*events) -> dict:
    return {"events": list(events)}


def raw(text: str) -> bytes:
    return text.encode()


STAGE = f"/api/v1/sessions/{SESSION}/stage"
CONVERSIONS = f"/api/v1/sessions/{SESSION}/conversions"
EVENTS = "/api/v1/events"
STOCK = "/api/v1/offers/A1/stock"
BULK_STOCK = "/api/v1/offers/stock"
VISITOR_URL = f"/api/v1/visitors/{VISITOR}"
TOO_DEEP = deep(40)
OVER_FIELD = big(16 * 1024)
UTF8_BAD = b'{"session_id": "s-\xff\xfe", "visitor_id": "v", "device": {"type": "mobile"}}'
LATIN1 = "application/json; charset=latin-1"

CASES = [
    # --- POST /api/v1/sessions (public key) ---
    Case(
        "start-missing-session-id",
        "POST",
        "/api/v1/sessions",
        400,
        "session_id",
        body={"visitor_id": "v", "device": {"type": "mobile"}},
    ),
    Case("start-session-id-slash", "POST", "/api/v1/sessions", 400, "session_id", body=session_start(session_id="a/b")),
    Case("start-session-id-space", "POST", "/api/v1/sessions", 400, "session_id", body=session_start(session_id="a b")),
    Case("start-session-id-dotdot", "POST", "/api/v1/sessions", 400, "session_id", body=session_start(session_id="..")),
    Case(
        "start-session-id-percent", "POST", "/api/v1/sessions", 400, "session_id", body=session_start(session_id="a%2F")
    ),
    Case(
        "start-session-id-long", "POST", "/api/v1/sessions", 400, "session_id", body=session_start(session_id="s" * 101)
    ),
    Case(
        "start-session-id-padded", "POST", "/api/v1/sessions", 400, "session_id", body=session_start(session_id=" s ")
    ),
    Case(
        "start-visitor-id-query", "POST", "/api/v1/sessions", 400, "visitor_id", body=session_start(visitor_id="v?x=1")
    ),
    Case(
        "start-visitor-id-unicode", "POST", "/api/v1/sessions", 400, "visitor_id", body=session_start(visitor_id="vä")
    ),
    Case(
        "start-device-missing", "POST", "/api/v1/sessions", 400, "device", body={"session_id": "s", "visitor_id": "v"}
    ),
    Case(
        "start-device-type", "POST", "/api/v1/sessions", 400, "device.type", body=session_start(device={"type": "tv"})
    ),
    Case(
        "start-entry-deep",
        "POST",
        "/api/v1/sessions",
        400,
        "entry_point",
        body=session_start(entry_point={"a": TOO_DEEP}),
    ),
    Case(
        "start-entry-source-long",
        "POST",
        "/api/v1/sessions",
        400,
        "entry_point",
        body=session_start(entry_point={"source": "x" * 51}),
    ),
    Case("start-metadata-large", "POST", "/api/v1/sessions", 400, "metadata", body=session_start(metadata=OVER_FIELD)),
    Case("start-utm-list", "POST", "/api/v1/sessions", 400, "utm", body=session_start(utm=["tiktok"])),
    Case(
        "start-referrer-nul", "POST", "/api/v1/sessions", 400, "referrer", body=session_start(referrer={"u": "a\x00"})
    ),
    Case(
        "start-intent-over-1",
        "POST",
        "/api/v1/sessions",
        400,
        "intent_signals.urgency",
        body=session_start(intent_signals={"urgency": 2}),
    ),
    Case(
        "start-persona-confidence",
        "POST",
        "/api/v1/sessions",
        400,
        "persona.confidence",
        body=session_start(persona={"type": "X", "confidence": 1.5}),
    ),
    Case("start-unknown-field", "POST", "/api/v1/sessions", 400, "colour", body=session_start(colour="red")),
    Case("start-slot-not-slug", "POST", "/api/v1/sessions", 400, "slots.0", body=session_start(slots=["a b"])),
    Case(
        "start-nested-3000",
        "POST",
        "/api/v1/sessions",
        400,
        "metadata",
        body=raw(
            '{"session_id": "s", "visitor_id": "v", "device": {"type": "mobile"}, "metadata": {"a": '
            + deep_text(3000)
            + "}}"
        ),
    ),
    Case("start-root-nested-3000", "POST", "/api/v1/sessions", 400, "body", "too_deep", body=raw(deep_text(3000))),
    Case("start-root-nested-40", "POST", "/api/v1/sessions", 400, "body", "too_deep", body=TOO_DEEP),
    Case("start-root-1e400", "POST", "/api/v1/sessions", 400, "body", "invalid", body=b"1e400"),
    Case("start-invalid-utf8", "POST", "/api/v1/sessions", 400, "body", "parse_error", body=UTF8_BAD),
    Case(
        "start-overlong-utf8",
        "POST",
        "/api/v1/sessions",
        400,
        "body",
        "parse_error",
        body=b'{"session_id": "\xc0\xaf"}',
    ),
    Case(
        "start-latin1-charset",
        "POST",
        "/api/v1/sessions",
        415,
        "Content-Type",
        "unsupported_media_type",
        body=session_start(),
        content_type=LATIN1,
    ),
    Case(
        "start-html",
        "POST",
        "/api/v1/sessions",
        415,
        "Content-Type",
        "unsupported_media_type",
        body=session_start(),
        content_type="text/html",
    ),
    Case(
        "start-form",
        "POST",
        "/api/v1/sessions",
        415,
        "Content-Type",
        "unsupported_media_type",
        body=b"session_id=s",
        content_type="application/x-www-form-urlencoded",
    ),
    Case("start-malformed", "POST", "/api/v1/sessions", 400, "body", "parse_error", body=b'{"session_id": '),
    Case("start-nan", "POST", "/api/v1/sessions", 400, "body", "parse_error", body=raw('{"session_id": NaN}')),
    Case(
        "start-number-1e400",
        "POST",
        "/api/v1/sessions",
        400,
        "metadata",
        body=raw('{"session_id": "s", "visitor_id": "v", "device": {"type": "mobile"}, "metadata": {"a": 1e400}}'),
    ),
    Case("start-array-body", "POST", "/api/v1/sessions", 400, "non_field_errors", body=[session_start()]),
    Case(
        "start-3mb",
        "POST",
        "/api/v1/sessions",
        413,
        "body",
        "body_too_large",
        body=session_start(metadata={"blob": "x" * 3_000_000}),
    ),
    Case("start-no-key", "POST", "/api/v1/sessions", 401, code="not_authenticated", body=session_start(), auth="none"),
    Case(
        "start-unknown-key",
        "POST",
        "/api/v1/sessions",
        401,
        code="invalid_site_key",
        body=session_start(),
        auth="none",
        headers={"HTTP_X_SITE_KEY": "pk_unknown"},
    ),
    Case(
        "start-foreign-origin",
        "POST",
        "/api/v1/sessions",
        403,
        code="origin_not_allowed",
        body=session_start(),
        headers={"HTTP_ORIGIN": "https://evil.example"},
    ),
    Case("start-get", "GET", "/api/v1/sessions", 405, code="method_not_allowed"),
    Case(
        "start-accept-html",
        "POST",
        "/api/v1/sessions",
        406,
        code="not_acceptable",
        body=session_start(),
        headers={"HTTP_ACCEPT": "text/html"},
    ),
    # --- POST /api/v1/sessions/{session_id}/stage ---
    Case("stage-unknown-stage", "POST", STAGE, 400, "new_stage", body=stage(new_stage="bored")),
    Case("stage-missing-stage", "POST", STAGE, 400, "new_stage", body={}),
    Case(
        "stage-interactions-over-int32",
        "POST",
        STAGE,
        400,
        "engagement.interaction_count",
        body=stage(engagement={"interaction_count": INT32_OVER}),
    ),
    Case(
        "stage-time-on-page-1e300",
        "POST",
        STAGE,
        400,
        "engagement.time_on_page",
        body=stage(engagement={"time_on_page": 1e300}),
    ),
    Case(
        "stage-scroll-negative",
        "POST",
        STAGE,
        400,
        "engagement.scroll_depth",
        body=stage(engagement={"scroll_depth": -1}),
    ),
    Case("stage-context-deep", "POST", STAGE, 400, "context", body=stage(context={"a": TOO_DEEP})),
    Case("stage-context-large", "POST", STAGE, 400, "context", body=stage(context=OVER_FIELD)),
    Case(
        "stage-context-1e400",
        "POST",
        STAGE,
        400,
        "context",
        body=raw('{"new_stage": "decision", "context": {"a": -1e400}}'),
    ),
    Case(
        "stage-context-3000",
        "POST",
        STAGE,
        400,
        "context",
        body=raw('{"new_stage": "decision", "context": {"a": ' + deep_text(3000) + "}}"),
    ),
    Case("stage-trigger-long", "POST", STAGE, 400, "trigger_event", body=stage(trigger_event="t" * 101)),
    Case("stage-unknown-session", "POST", "/api/v1/sessions/s-none/stage", 404, code="session_not_found", body=stage()),
    Case("stage-slash-session", "POST", "/api/v1/sessions/a%2Fb/stage", 404, code="not_found", body=stage()),
    Case("stage-invalid-utf8", "POST", STAGE, 400, "body", "parse_error", body=b'{"new_stage": "\xe9"}'),
    Case(
        "stage-html",
        "POST",
        STAGE,
        415,
        "Content-Type",
        "unsupported_media_type",
        body=stage(),
        content_type="text/html",
    ),
    # --- POST /api/v1/sessions/{session_id}/conversions ---
    Case("conversion-event-id", "POST", CONVERSIONS, 400, "event_id", body=conversion(event_id="c-1")),
    Case("conversion-value-negative", "POST", CONVERSIONS, 400, "value", body=conversion(value="-1")),
    Case("conversion-value-huge", "POST", CONVERSIONS, 400, "value", body=conversion(value="10000000000000")),
    Case("conversion-currency", "POST", CONVERSIONS, 400, "currency", body=conversion(currency="eur")),
    Case("conversion-product-large", "POST", CONVERSIONS, 400, "product", body=conversion(product=OVER_FIELD)),
    Case("conversion-product-deep", "POST", CONVERSIONS, 400, "product", body=conversion(product={"a": TOO_DEEP})),
    Case("conversion-type-missing", "POST", CONVERSIONS, 400, "type", body={"event_id": str(uuid.uuid4())}),
    Case("conversion-funnel-step-long", "POST", CONVERSIONS, 400, "funnel_step", body=conversion(funnel_step="f" * 51)),
    Case(
        "conversion-unknown-session",
        "POST",
        "/api/v1/sessions/s-none/conversions",
        404,
        code="session_not_found",
        body=conversion(),
    ),
    Case(
        "conversion-invalid-utf8-beacon",
        "POST",
        CONVERSIONS + "?site_key={public_key}",
        400,
        "body",
        "parse_error",
        body=b'{"type": "\xff"}',
        content_type="text/plain;charset=UTF-8",
        auth="none",
    ),
    # --- POST /api/v1/events: refusals of the whole batch ---
    Case("events-invalid-utf8", "POST", EVENTS, 400, "body", "parse_error", body=b'{"events": [{"type": "\xff\xfe"}]}'),
    Case(
        "events-invalid-utf8-beacon",
        "POST",
        EVENTS + "?site_key={public_key}",
        400,
        "body",
        "parse_error",
        body=b'{"events": [{"type": "\xc3"}]}',
        content_type="text/plain;charset=UTF-8",
        auth="none",
    ),
    Case(
        "events-nested-3000",
        "POST",
        EVENTS,
        400,
        "events",
        "too_deep",
        body=raw('{"events": [{"interaction_data": ' + deep_text(3000) + "}]}"),
    ),
    Case("events-root-nested-3000", "POST", EVENTS, 400, "body", "too_deep", body=raw(deep_text(3000))),
    Case(
        "events-html",
        "POST",
        EVENTS,
        415,
        "Content-Type",
        "unsupported_media_type",
        body=batch(),
        content_type="text/html",
    ),
    Case(
        "events-form",
        "POST",
        EVENTS,
        415,
        "Content-Type",
        "unsupported_media_type",
        body=b"events=1",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "events-no-content-type",
        "POST",
        EVENTS,
        415,
        "Content-Type",
        "unsupported_media_type",
        body=batch(),
        content_type="",
    ),
    Case(
        "events-latin1",
        "POST",
        EVENTS,
        415,
        "Content-Type",
        "unsupported_media_type",
        body=batch(),
        content_type=LATIN1,
    ),
    Case("events-missing-list", "POST", EVENTS, 400, "events", "invalid", body={"event": []}),
    Case("events-empty", "POST", EVENTS, 400, "events", "invalid", body=batch()),
    Case("events-unknown-top-level", "POST", EVENTS, 400, "batch_id", "invalid", body={"events": [{}], "batch_id": 1}),
    Case("events-malformed", "POST", EVENTS, 400, "body", "parse_error", body=b'{"events": [}'),
    Case("events-number-1e400", "POST", EVENTS, 400, "body", "parse_error", body=raw('{"events": [{"a": 1e400}]}')),
    Case("events-1001", "POST", EVENTS, 413, code="too_many_events", body=batch(*[{}] * 1001)),
    Case("events-event-over-32kb", "POST", EVENTS, 413, code="event_too_large", body=batch({"blob": "x" * 33_000})),
    Case("events-body-over-1mb", "POST", EVENTS, 413, code="batch_too_large", body=batch(*[{"b": "x" * 30_000}] * 40)),
    Case("events-no-key", "POST", EVENTS, 401, code="not_authenticated", body=batch(), auth="none"),
    # --- POST /api/v1/identify ---
    Case(
        "identify-session-id-slash",
        "POST",
        "/api/v1/identify",
        400,
        "session_id",
        body={"session_id": "a/b", "identifier": "ann@example.com", "method": "email"},
    ),
    Case(
        "identify-method",
        "POST",
        "/api/v1/identify",
        400,
        "method",
        body={"session_id": SESSION, "identifier": "ann@example.com", "method": "fax"},
    ),
    Case(
        "identify-identifier-long",
        "POST",
        "/api/v1/identify",
        400,
        "identifier",
        body={"session_id": SESSION, "identifier": "a" * 321, "method": "user_id"},
    ),
    Case(
        "identify-unknown-session",
        "POST",
        "/api/v1/identify",
        404,
        code="session_not_found",
        body={"session_id": "s-none", "identifier": "ann@example.com", "method": "email"},
    ),
    Case(
        "identify-no-consent",
        "POST",
        "/api/v1/identify",
        403,
        code="consent_required",
        body={"session_id": SESSION, "identifier": "ann@example.com", "method": "email"},
    ),
    Case(
        "identify-html",
        "POST",
        "/api/v1/identify",
        415,
        "Content-Type",
        "unsupported_media_type",
        body={"session_id": SESSION},
        content_type="text/html",
    ),
    # --- POST /api/v1/consent ---
    Case(
        "consent-visitor-id-slash",
        "POST",
        "/api/v1/consent",
        400,
        "visitor_id",
        body={"visitor_id": "a/b", "personalization": True},
    ),
    Case("consent-no-flag", "POST", "/api/v1/consent", 400, "personalization", body={"visitor_id": VISITOR}),
    Case(
        "consent-flag-not-boolean",
        "POST",
        "/api/v1/consent",
        400,
        "personalization",
        body={"visitor_id": VISITOR, "personalization": "maybe"},
    ),
    Case(
        "consent-nested-3000",
        "POST",
        "/api/v1/consent",
        400,
        "extra",
        body=raw('{"visitor_id": "v-1", "extra": ' + deep_text(3000) + "}"),
    ),
    Case(
        "consent-invalid-utf8",
        "POST",
        "/api/v1/consent",
        400,
        "body",
        "parse_error",
        body=b'{"visitor_id": "\xed\xa0\x80"}',
    ),
    # --- POST /api/v1/decide ---
    Case("decide-session-id-slash", "POST", "/api/v1/decide", 400, "session_id", body=decide(session_id="a/b")),
    Case("decide-slots-empty", "POST", "/api/v1/decide", 400, "slots", body=decide(slots=[])),
    Case("decide-slots-unknown", "POST", "/api/v1/decide", 400, "slots", body=decide(slots=["sidebar"])),
    Case("decide-slots-51", "POST", "/api/v1/decide", 400, "slots", body=decide(slots=[f"s{n}" for n in range(51)])),
    Case("decide-context-large", "POST", "/api/v1/decide", 400, "context", body=decide(context=OVER_FIELD)),
    Case("decide-context-deep", "POST", "/api/v1/decide", 400, "context", body=decide(context={"a": TOO_DEEP})),
    Case(
        "decide-unknown-session", "POST", "/api/v1/decide", 404, code="session_not_found", body=decide(session_id="s-x")
    ),
    Case(
        "decide-html",
        "POST",
        "/api/v1/decide",
        415,
        "Content-Type",
        "unsupported_media_type",
        body=decide(),
        content_type="text/html",
    ),
    # --- PUT /api/v1/offers/{sku}/stock (secret key) ---
    Case("stock-over-int32", "PUT", STOCK, 400, "stock_remaining", body={"stock_remaining": INT32_OVER}, auth="secret"),
    Case("stock-negative", "PUT", STOCK, 400, "stock_remaining", body={"stock_remaining": -1}, auth="secret"),
    Case("stock-text", "PUT", STOCK, 400, "stock_remaining", body={"stock_remaining": "many"}, auth="secret"),
    Case("stock-missing", "PUT", STOCK, 400, "stock_remaining", body={}, auth="secret"),
    Case(
        "stock-restock-year-1",
        "PUT",
        STOCK,
        400,
        "restock_at",
        body={"stock_remaining": 3, "restock_at": "0001-01-01T00:00:00+14:00"},
        auth="secret",
    ),
    Case(
        "stock-restock-year-9999",
        "PUT",
        STOCK,
        400,
        "restock_at",
        body={"stock_remaining": 3, "restock_at": "9999-12-31T23:59:59-14:00"},
        auth="secret",
    ),
    Case(
        "stock-restock-20-years",
        "PUT",
        STOCK,
        400,
        "restock_at",
        body={"stock_remaining": 3, "restock_at": iso(datetime.now(UTC) + timedelta(days=20 * 365))},
        auth="secret",
    ),
    Case(
        "stock-unknown-sku",
        "PUT",
        "/api/v1/offers/Z9/stock",
        404,
        code="offer_not_found",
        body={"stock_remaining": 1},
        auth="secret",
    ),
    Case("stock-public-key", "PUT", STOCK, 403, code="secret_key_required", body={"stock_remaining": 1}),
    Case("stock-no-key", "PUT", STOCK, 401, code="not_authenticated", body={"stock_remaining": 1}, auth="none"),
    Case(
        "stock-text-plain",
        "PUT",
        STOCK,
        415,
        "Content-Type",
        "unsupported_media_type",
        body={"stock_remaining": 1},
        content_type="text/plain",
        auth="secret",
    ),
    Case(
        "stock-invalid-utf8",
        "PUT",
        STOCK,
        400,
        "body",
        "parse_error",
        body=b'{"stock_remaining": "\xff"}',
        auth="secret",
    ),
    Case(
        "stock-3mb",
        "PUT",
        STOCK,
        413,
        "body",
        "body_too_large",
        body={"stock_remaining": 1, "x": "x" * 3_000_000},
        auth="secret",
    ),
    Case("stock-post", "POST", STOCK, 405, code="method_not_allowed", body={"stock_remaining": 1}, auth="secret"),
    # --- PUT /api/v1/offers/stock ---
    Case("bulk-empty", "PUT", BULK_STOCK, 400, "offers", body={"offers": []}, auth="secret"),
    Case(
        "bulk-sku-slash",
        "PUT",
        BULK_STOCK,
        400,
        "offers.0.sku",
        body={"offers": [{"sku": "A/1", "stock_remaining": 1}]},
        auth="secret",
    ),
    Case(
        "bulk-sku-long",
        "PUT",
        BULK_STOCK,
        400,
        "offers.0.sku",
        body={"offers": [{"sku": "A" * 65, "stock_remaining": 1}]},
        auth="secret",
    ),
    Case(
        "bulk-over-int32",
        "PUT",
        BULK_STOCK,
        400,
        "offers.0.stock_remaining",
        body={"offers": [{"sku": "A1", "stock_remaining": INT32_OVER}]},
        auth="secret",
    ),
    Case(
        "bulk-repeated-sku",
        "PUT",
        BULK_STOCK,
        400,
        "offers",
        body={"offers": [{"sku": "A1", "stock_remaining": 1}, {"sku": "A1", "stock_remaining": 2}]},
        auth="secret",
    ),
    Case(
        "bulk-unknown-sku",
        "PUT",
        BULK_STOCK,
        400,
        "offers",
        body={"offers": [{"sku": "A1", "stock_remaining": 1}, {"sku": "Z9", "stock_remaining": 2}]},
        auth="secret",
    ),
    Case(
        "bulk-1001",
        "PUT",
        BULK_STOCK,
        400,
        "offers",
        body={"offers": [{"sku": f"S{n}", "stock_remaining": 1} for n in range(1001)]},
        auth="secret",
    ),
    # --- GET/DELETE /api/v1/visitors/{visitor_id} (staff) ---
    Case("visitor-no-token", "GET", VISITOR_URL, 401, code="not_authenticated", auth="none"),
    Case("visitor-public-key-only", "GET", VISITOR_URL, 403, code="staff_only"),
    Case("visitor-no-site", "GET", VISITOR_URL, 400, "X-Site-Key", auth="staff-no-site"),
    Case("visitor-unknown", "GET", "/api/v1/visitors/v-none", 404, code="visitor_not_found", auth="staff"),
    Case("visitor-erase-unknown", "DELETE", "/api/v1/visitors/v-none", 404, code="visitor_not_found", auth="staff"),
    Case("visitor-nul", "GET", "/api/v1/visitors/v%00", 400, "visitor_id", auth="staff"),
    Case("visitor-post", "POST", VISITOR_URL, 405, code="method_not_allowed", body={}, auth="staff"),
    # --- GET /api/v1/analytics/... (staff) ---
    Case(
        "experiment-unknown",
        "GET",
        "/api/v1/analytics/experiments/nope",
        404,
        code="experiment_not_found",
        auth="staff",
    ),
    Case("experiment-no-site", "GET", "/api/v1/analytics/experiments/nope", 400, "X-Site-Key", auth="staff-no-site"),
    Case("scarcity-since", "GET", "/api/v1/analytics/scarcity?since=yesterday", 400, "since", auth="staff"),
    Case("scarcity-until", "GET", "/api/v1/analytics/scarcity?until=2026-13-01", 400, "until", auth="staff"),
    Case("funnel-date-from", "GET", "/api/v1/analytics/funnel?date_from=2026-02-30", 400, "date_from", auth="staff"),
    Case(
        "funnel-range",
        "GET",
        "/api/v1/analytics/funnel?date_from=2024-01-01&date_to=2026-01-01",
        400,
        "date_from",
        auth="staff",
    ),
    Case("overview-site-text", "GET", "/api/v1/analytics/overview?site=abc", 400, "site", auth="staff"),
    Case("overview-site-over-bigint", "GET", "/api/v1/analytics/overview?site=9" + "9" * 25, 400, "site", auth="staff"),
    Case("timeseries-device", "GET", "/api/v1/analytics/timeseries?device=tv", 400, "device", auth="staff"),
    Case("journeys-path", "GET", "/api/v1/analytics/journeys?path=bogus", 400, "path", auth="staff"),
    Case(
        "personalization-persona-long",
        "GET",
        "/api/v1/analytics/personalization?persona=" + "p" * 51,
        400,
        "persona",
        auth="staff",
    ),
    Case("allocation-shape", "GET", "/api/v1/analytics/allocation?shape=csv", 400, "shape", auth="staff"),
    Case(
        "scarcity-daily-date-to",
        "GET",
        "/api/v1/analytics/scarcity/daily?date_to=0000-01-01",
        400,
        "date_to",
        auth="staff",
    ),
    Case("analytics-query-nul", "GET", "/api/v1/analytics/funnel?persona=a%00", 400, "persona", auth="staff"),
    Case("analytics-no-token", "GET", "/api/v1/analytics/overview", 401, code="not_authenticated", auth="none"),
    Case("analytics-public-key-only", "GET", "/api/v1/analytics/overview", 403, code="staff_only"),
    # --- outside the views ---
    Case("unknown-path", "GET", "/api/v1/nothing-here", 404, code="not_found"),
    Case(
        "url-too-long",
        "GET",
        "/api/v1/analytics/funnel?persona=" + "p" * 2100,
        414,
        "url",
        "url_too_long",
        auth="staff",
    ),
    Case(
        "path-too-long", "POST", "/api/v1/sessions/" + "s" * 2100 + "/stage", 414, "url", "url_too_long", body=stage()
    ),
    Case(
        "disallowed-host",
        "POST",
        "/api/v1/sessions",
        400,
        "Host",
        "disallowed_host",
        body=session_start(),
        headers={"HTTP_HOST": "evil.example"},
    ),
]


@pytest.fixture
def world(site, api, privacy_officer):
    """A site with a session and its visitor, its keys and a staff token (of a privacy officer,
    who may also export and erase visitors): what the cases name exists (the stock feed's
    cases add an offer), so each refusal is about the bad part only."""
    assert start(api, SESSION, visitor_id=VISITOR).status_code == 201
    return {
        "site": site,
        "public_key": site.public_key,
        "secret_key": site_secret_rotate(site=site),
        "token": Token.objects.get_or_create(user=privacy_officer)[0].key,
    }


def client_for(case: Case, world: dict) -> APIClient:
    headers = {
        "public": {"HTTP_X_SITE_KEY": world["public_key"]},
        "secret": {"HTTP_AUTHORIZATION": f"Bearer {world['secret_key']}"},
        "staff": {"HTTP_AUTHORIZATION": f"Token {world['token']}", "HTTP_X_SITE_KEY": world["public_key"]},
        "staff-no-site": {"HTTP_AUTHORIZATION": f"Token {world['token']}"},
        "none": {},
    }[case.auth]
    client = APIClient()
    client.credentials(**headers, **case.headers)
    return client


def stored_state() -> dict:
    """Rows per table of the product's apps, and the state a write could change in place."""
    counts = {
        model._meta.label: model.objects.count()
        for app in ("journeys", "personalization", "analytics")
        for model in apps.get_app_config(app).get_models()
    }
    return {
        "counts": counts,
        "sessions": list(JourneySession.objects.order_by("pk").values_list("current_stage", "engagement", "metadata")),
        "visitors": list(Visitor.objects.order_by("pk").values_list("consent_personalization", "consent_cross_device")),
        "offers": list(Offer.objects.order_by("pk").values_list("stock_remaining", "stock_updated_at", "restock_at")),
    }


def send(case: Case, world: dict):
    body = case.body
    if isinstance(body, dict | list):
        body = json.dumps(body)
    path = case.path.format(public_key=world["public_key"])
    return client_for(case, world).generic(case.method, path, data=body or b"", content_type=case.content_type)


def assert_names(data: Any, case: Case) -> None:
    if case.code is not None:
        assert data["code"] == case.code, data
        if case.names is not None:
            assert data["field"] == case.names, data
        assert isinstance(data["detail"], str) and data["detail"]
        return
    parts = case.names.split(".")
    assert list(data) == [parts[0]], data
    node = data
    for part in parts:
        node = node[int(part)] if isinstance(node, list) else node[part]
    assert isinstance(node, list) and node and all(isinstance(reason, str) and reason for reason in node), data


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_a_4xx_json_naming_the_field_and_writes_nothing(case, world, django_user_model):
    if "/offers/" in case.path:
        live_offer(world["site"], make_people(django_user_model), sku="A1", stock=5)
    before = stored_state()

    response = send(case, world)

    assert response.status_code == case.status, response.content[:500]
    assert response["Content-Type"].split(";")[0] == "application/json"
    assert_names(json.loads(response.content), case)
    assert stored_state() == before


def test_the_suite_covers_every_endpoint_with_at_least_80_cases():
    from django.urls import get_resolver

    def patterns(resolver, prefix=""):
        for entry in resolver.url_patterns:
            if hasattr(entry, "url_patterns"):
                yield from patterns(entry, prefix + str(entry.pattern))
            else:
                yield prefix + str(entry.pattern)

    api_routes = {route for route in patterns(get_resolver()) if route.startswith("api/v1/")}
    covered = {route for route in api_routes if any(_matches(route, case.path) for case in CASES)}
    assert sorted(api_routes - covered) == []
    assert len(CASES) >= 80
    assert len({case.id for case in CASES}) == len(CASES)


def _matches(route: str, path: str) -> bool:
    import re

    pattern = re.sub(r"<(?:str|slug):\w+>", "[^/?]+", route.rstrip("$^"))
    return re.fullmatch("/" + pattern + r"(\?.*)?", path) is not None


# --- events a batch rejects one by one: 200, named in `rejected`, quarantined, not stored ---

NOW = datetime.now(UTC)
EVENT_CASES = [
    ("timestamp-year-1", {"timestamp": "0001-01-01T00:00:00+14:00"}, "timestamp"),
    ("timestamp-year-9999", {"timestamp": "9999-12-31T23:59:59-14:00"}, "timestamp"),
    ("timestamp-8-days-old", {"timestamp": iso(NOW - timedelta(days=8))}, "timestamp"),
    ("timestamp-2-days-ahead", {"timestamp": iso(NOW + timedelta(days=2))}, "timestamp"),
    ("timestamp-no-offset", {"timestamp": "2026-01-01T10:00:00"}, "timestamp"),
    ("session-id-slash", {"session_id": "a/b"}, "session_id"),
    ("session-id-long", {"session_id": "s" * 101}, "session_id"),
    ("session-id-unknown", {"session_id": "s-none"}, "session_id"),
    ("interaction-data-deep", {"interaction_data": {"a": deep(35)}}, "interaction_data"),
    ("interaction-data-large", {"interaction_data": big(16 * 1024)}, "interaction_data"),
    ("device-context-deep", {"device_context": {"a": deep(35)}}, "device_context"),
    ("extra-field-large", {"campaign_blob": big(16 * 1024)}, "campaign_blob"),
    ("duration-over-int32", {"duration_seconds": INT32_OVER}, "duration_seconds"),
    ("click-count-negative", {"click_count": -1}, "click_count"),
    ("click-count-over-int64", {"click_count": 2**63}, "click_count"),
    ("conversion-value-huge", {"conversion_value": 1e11}, "conversion_value"),
    ("page-title-nul", {"page_title": "a\x00b"}, "page_title"),
    ("event-id-not-uuid", {"event_id": "e-1"}, "event_id"),
    ("scroll-depth-over-1", {"scroll_depth": 2}, "scroll_depth"),
]


@pytest.mark.parametrize(("fields", "named"), [c[1:] for c in EVENT_CASES], ids=[c[0] for c in EVENT_CASES])
def test_a_bad_event_is_rejected_naming_the_field_quarantined_and_not_stored(world, api, fields, named):
    bad = event(SESSION, **fields)
    touchpoints = Touchpoint.objects.count()

    response = api.post(EVENTS, {"events": [bad]}, format="json")

    assert response.status_code == 200
    (rejected,) = response.json()["rejected"]
    assert list(rejected["errors"]) == [named], rejected
    assert response.json()["accepted"] == 0
    assert Touchpoint.objects.count() == touchpoints
    quarantined = QuarantinedEvent.objects.get()
    assert quarantined.reason == rejected["errors"]


def test_an_event_from_year_1_no_longer_breaks_the_visitor_export(world, api):
    api.post(EVENTS, {"events": [event(SESSION, timestamp="0001-01-01T00:00:00+14:00")]}, format="json")

    response = client_for(Case("export", "GET", VISITOR_URL, 200, auth="staff"), world).get(VISITOR_URL)

    assert response.status_code == 200
    (quarantined,) = response.json()["quarantined_events"]
    assert quarantined["reason"] == {"timestamp": ["Timestamp is more than 7 days in the past."]}


# --- on the wire: what the test client cannot send ---


def wire(live_server, request: bytes) -> tuple[int, dict]:
    """Send ``request`` bytes as they are; the status and the JSON body of the answer."""
    address = urlparse(live_server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.connect()
    connection.sock.sendall(request)
    response = http.client.HTTPResponse(connection.sock, method="POST")
    response.begin()
    assert response.getheader("Content-Type").split(";")[0] == "application/json"
    body = json.loads(response.read())
    connection.close()
    return response.status, body


# The live server reads what the test committed; the database is restored afterwards as the
# other live tests expect it (roles and groups included).
LIVE = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def live_site(transactional_db, django_db_serialized_rollback, client_for):
    from journeys.services.sites import site_create

    site = site_create(name="Live", domain="live.example")
    assert start(client_for(site), SESSION, visitor_id=VISITOR).status_code == 201
    return site


def post_bytes(path: str, body: bytes, *, site_key: str, length: int | None = None, ctype: str = JSON) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nX-Site-Key: {site_key}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@pytest.mark.parametrize(
    ("path", "body", "length", "status", "expected"),
    [
        (EVENTS, b'{"events": [{"type": "\xff"}]}', None, 400, {"code": "parse_error", "field": "body"}),
        ("/api/v1/sessions", b'{"session_id": "\xc3\x28"}', None, 400, {"code": "parse_error", "field": "body"}),
        ("/api/v1/sessions", b"{}", 3_000_000, 413, {"code": "body_too_large", "field": "body"}),
        (EVENTS, b"{}", 3_000_000, 413, {"code": "batch_too_large"}),
    ],
    ids=["events-invalid-utf8", "start-invalid-utf8", "start-declares-3mb", "events-declares-3mb"],
)
@LIVE
def test_on_the_wire_bad_bodies_get_json_4xx(live_server, live_site, path, body, length, status, expected):
    before = stored_state()

    answered, data = wire(live_server, post_bytes(path, body, site_key=live_site.public_key, length=length))

    assert answered == status
    assert {key: data[key] for key in expected} == expected
    assert stored_state() == before


@LIVE
def test_on_the_wire_an_over_long_url_gets_414_json_before_routing(live_server, live_site):
    limit = settings.URL_MAX_LENGTH
    path = "/api/v1/sessions/" + "s" * limit + "/stage"

    status, data = wire(live_server, post_bytes(path, b"{}", site_key=live_site.public_key))

    assert status == 414
    assert data == {
        "detail": f"The URL is {len(path)} characters; the limit is {limit}.",
        "code": "url_too_long",
        "field": "url",
    }


# --- nesting depth, level by level: refused at the limit's first level over, never a 5xx ---

DEPTHS = [1, 27, 28, 29, 30, 31, 32, 100, 500, *range(900, 1100, 25), 3000, 50_000]


def test_nesting_in_an_event_is_stored_up_to_the_limit_then_refused_at_every_depth(world, api):
    # body 1, events 2, the event 3, interaction_data 4: its arrays may fill levels 5 to 32.
    allowed = settings.JSON_MAX_DEPTH - 4
    for levels in DEPTHS:
        sent = event(SESSION)
        body = json.dumps({"events": [sent]})[:-3] + ', "interaction_data": {"a": ' + deep_text(levels) + "}}]}"
        touchpoints = Touchpoint.objects.count()

        response = api.generic("POST", EVENTS, body, content_type=JSON)

        answer = response.json()
        if levels <= allowed:
            assert (response.status_code, answer["accepted"]) == (200, 1), levels
            continue
        if response.status_code == 200:
            (rejected,) = answer["rejected"]
            assert list(rejected["errors"]) == ["interaction_data"], levels
        else:
            assert (response.status_code, answer["code"], answer["field"], answer["index"]) == (
                400,
                "too_deep",
                "events",
                0,
            ), levels
        assert Touchpoint.objects.count() == touchpoints


def test_nesting_in_a_stage_context_is_accepted_up_to_the_limit_then_refused_at_every_depth(world, api):
    # body 1, context 2: its arrays may fill levels 3 to 32.
    allowed = settings.JSON_MAX_DEPTH - 2
    for levels in DEPTHS:
        body = '{"new_stage": "consideration", "context": {"a": ' + deep_text(levels) + "}}"

        response = api.generic("POST", STAGE, body, content_type=JSON)

        if levels <= allowed:
            assert response.status_code == 200, levels
        else:
            assert response.status_code == 400, levels
            assert list(response.json()) == ["context"], levels


def test_pages_people_read_keep_html_error_pages_while_api_paths_answer_json(client):
    page = client.get("/admin/login/", HTTP_HOST="evil.example")
    api_path = client.get("/api/v1/analytics/overview", HTTP_HOST="evil.example")

    assert (page.status_code, page["Content-Type"]) == (400, "text/html; charset=utf-8")
    assert (api_path.status_code, api_path.json()) == (
        400,
        {"detail": "Host 'evil.example' is not served here.", "code": "disallowed_host", "field": "Host"},
    )


def test_touchpoints_stored_before_the_window_with_unreadable_timestamps_move_to_quarantine(world, api):
    from datetime import timezone as tz
    from importlib import import_module
    from types import SimpleNamespace

    from django.db import connection

    migration = import_module("journeys.migrations.0008_quarantine_unreadable_touchpoints")
    assert api.post(EVENTS, {"events": [event(SESSION)]}, format="json").json()["accepted"] == 1
    session = JourneySession.objects.get(session_id=SESSION)
    Touchpoint.objects.create(  # as the API stored it before timestamps were bounded
        site=world["site"],
        session=session,
        event_id=uuid.uuid4(),
        sequence=2,
        type="page_view",
        client_timestamp=datetime(1, 1, 1, tzinfo=tz(timedelta(hours=14))),
        received_at=datetime.now(UTC),
        payload_hash="x",
    )
    JourneySession.objects.filter(pk=session.pk).update(total_touchpoints=2)

    migration.quarantine_unreadable(None, SimpleNamespace(connection=connection))

    assert Touchpoint.objects.count() == 1
    assert JourneySession.objects.get(pk=session.pk).total_touchpoints == 1
    moved = QuarantinedEvent.objects.get()
    assert (moved.raw_payload["session_id"], moved.raw_payload["timestamp"]) == (SESSION, "0001-12-31 10:00:00+00 BC")
    assert list(moved.reason) == ["timestamp"]
    export = client_for(Case("export", "GET", VISITOR_URL, 200, auth="staff"), world).get(VISITOR_URL)
    assert export.status_code == 200
    assert [len(s["touchpoints"]) for s in export.json()["sessions"]] == [1]
