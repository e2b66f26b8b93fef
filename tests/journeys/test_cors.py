"""A shop's pages on their own origin: CORS preflights, per-site origins, beacon delivery."""

import json
import uuid
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from journeys import selectors
from journeys.models import ConversionEvent, Touchpoint
from journeys.services.sites import site_create, site_origins_set
from tests.journeys.helpers import EVENTS_URL, event, row_counts, start

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example"
ELSEWHERE = "https://evil.example"
BROWSER_PATHS = [
    "/api/v1/sessions",
    "/api/v1/sessions/s-1/stage",
    "/api/v1/sessions/s-1/conversions",
    "/api/v1/events",
    "/api/v1/decide",
    "/api/v1/identify",
    "/api/v1/consent",
]
STAFF_PATHS = ["/api/v1/visitors/v-1", "/api/v1/analytics/funnel", "/api/v1/offers/A1/stock"]


def preflight(path: str, origin: str, **extra):
    return APIClient().options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-site-key",
        **extra,
    )


@pytest.mark.parametrize("path", BROWSER_PATHS)
def test_preflight_from_an_allowed_origin_is_answered_without_a_key(site, path):
    response = preflight(path, SHOP)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert response["Access-Control-Allow-Headers"] == "content-type, x-site-key"
    assert response["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert response["Access-Control-Max-Age"] == "86400"
    assert "Access-Control-Allow-Credentials" not in response
    assert "origin" in response["Vary"].lower()


@pytest.mark.parametrize("path", BROWSER_PATHS)
def test_preflight_from_an_origin_no_site_allows_gets_no_cors_header(site, path):
    response = preflight(path, ELSEWHERE)

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_preflight_naming_a_site_by_query_key_is_checked_against_that_site(site, other_site):
    # other.example's origin is allowed by other_site, not by site
    response = preflight(f"{EVENTS_URL}?site_key={site.public_key}", "https://other.example")

    assert "Access-Control-Allow-Origin" not in response
    assert preflight(f"{EVENTS_URL}?site_key={other_site.public_key}", "https://other.example")[
        "Access-Control-Allow-Origin"
    ] == ("https://other.example")


@pytest.mark.parametrize("path", STAFF_PATHS)
def test_staff_and_server_endpoints_never_answer_cross_origin(site, path):
    response = preflight(path, SHOP)

    assert "Access-Control-Allow-Origin" not in response
    assert response.status_code in (401, 403)


def test_call_from_an_allowed_origin_gets_the_cors_header(site, client_for):
    response = client_for(site).post(
        "/api/v1/sessions",
        {"session_id": "s-1", "visitor_id": "v-1", "device": {"type": "mobile"}},
        format="json",
        HTTP_ORIGIN=SHOP,
    )

    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == SHOP


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/sessions", {"session_id": "s-2", "visitor_id": "v-2", "device": {"type": "mobile"}}),
        ("/api/v1/sessions/s-1/stage", {"new_stage": "decision"}),
        ("/api/v1/sessions/s-1/conversions", {"event_id": str(uuid.uuid4()), "type": "purchase", "value": "5.00"}),
        (EVENTS_URL, {"events": [event("s-1")]}),
        ("/api/v1/decide", {"session_id": "s-1", "slots": ["hero"]}),
        ("/api/v1/identify", {"session_id": "s-1", "identifier": "ann@example.com", "method": "email"}),
        ("/api/v1/consent", {"visitor_id": "v-s-1", "personalization": False}),
    ],
)
def test_call_from_an_origin_the_site_does_not_allow_is_403_and_writes_nothing(site, other_site, api, path, body):
    assert start(api, "s-1").status_code == 201
    before = row_counts()

    # other.example is allowed by another site, so the preflight passed; the call names this site
    response = api.post(path, body, format="json", HTTP_ORIGIN="https://other.example")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Origin 'https://other.example' is not among this site's allowed origins.",
        "code": "origin_not_allowed",
    }
    assert "Access-Control-Allow-Origin" not in response
    assert row_counts() == before


def test_requests_without_origin_or_from_the_engine_itself_are_not_browser_cross_origin(site, api):
    assert start(api, "s-1").status_code == 201
    same_origin = api.post(EVENTS_URL, {"events": [event("s-1")]}, format="json", HTTP_ORIGIN="http://testserver")

    assert same_origin.status_code == 200
    assert same_origin.json()["accepted"] == 1


def test_changed_origins_apply_once_processes_recheck_the_config(
    site, api, monkeypatch, django_capture_on_commit_callbacks
):
    assert start(api, "s-1").status_code == 201
    # every process compares the sites' config version at most every 0.5 s; here at every read
    monkeypatch.setattr(selectors._sites, "check_interval", 0)
    with django_capture_on_commit_callbacks(execute=True):
        site_origins_set(site=site, allowed_origins=["https://new-shop.example/"])

    old = api.post(EVENTS_URL, {"events": [event("s-1")]}, format="json", HTTP_ORIGIN=SHOP)
    new = api.post(EVENTS_URL, {"events": [event("s-1")]}, format="json", HTTP_ORIGIN="https://new-shop.example")

    assert old.status_code == 403
    assert new.status_code == 200
    assert new["Access-Control-Allow-Origin"] == "https://new-shop.example"
    assert Touchpoint.objects.count() == 1


def beacon(path: str, key: str, payload) -> object:
    """What ``navigator.sendBeacon(url, new Blob([json], {type: "text/plain"}))`` sends."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return APIClient().post(f"{path}?site_key={key}", body, content_type="text/plain;charset=UTF-8", HTTP_ORIGIN=SHOP)


def test_events_by_beacon_are_stored_once_with_the_same_answers_as_json(site, api):
    assert start(api, "s-1").status_code == 201
    events = [event("s-1"), event("s-1"), event("s-1", scroll_depth=7)]

    first = beacon(EVENTS_URL, site.public_key, {"events": events})
    again = beacon(EVENTS_URL, site.public_key, {"events": events[:2]})

    assert first.status_code == 200
    assert first.json()["accepted"] == 2
    assert [item["index"] for item in first.json()["rejected"]] == [2]
    assert again.json() | {"rejected": []} == {"accepted": 0, "duplicates": 2, "conflicts": 0, "rejected": []}
    assert sorted(str(e) for e in Touchpoint.objects.values_list("event_id", flat=True)) == sorted(
        e["event_id"] for e in events[:2]
    )
    assert first["Access-Control-Allow-Origin"] == SHOP


def test_beacon_batch_over_the_limit_is_413_and_writes_nothing(site, api):
    assert start(api, "s-1").status_code == 201
    before = row_counts()

    response = beacon(EVENTS_URL, site.public_key, {"events": [event("s-1") for _ in range(1001)]})

    assert response.status_code == 413
    assert row_counts() == before


def test_malformed_beacon_body_is_400_and_writes_nothing(site, api):
    assert start(api, "s-1").status_code == 201
    before = row_counts()

    response = beacon(EVENTS_URL, site.public_key, b'{"events": [')

    assert response.status_code == 400
    assert row_counts() == before


def test_unknown_query_key_is_401_and_writes_nothing(site, api):
    assert start(api, "s-1").status_code == 201
    before = row_counts()

    response = beacon(EVENTS_URL, "pk_unknown", {"events": [event("s-1")]})

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_site_key"
    assert row_counts() == before


def test_beacon_from_an_origin_the_site_does_not_allow_is_403_and_writes_nothing(site, other_site, api):
    assert start(api, "s-1").status_code == 201
    before = row_counts()

    response = APIClient().post(
        f"{EVENTS_URL}?site_key={site.public_key}",
        json.dumps({"events": [event("s-1")]}),
        content_type="text/plain",
        HTTP_ORIGIN="https://other.example",
    )

    assert response.status_code == 403
    assert response.json()["code"] == "origin_not_allowed"
    assert row_counts() == before


def test_conversion_by_beacon_is_recorded_once(site, api):
    assert start(api, "s-1").status_code == 201
    body = {"event_id": str(uuid.uuid4()), "type": "purchase", "value": "49.90", "product": {"sku": "A1"}}

    first = beacon("/api/v1/sessions/s-1/conversions", site.public_key, body)
    again = beacon("/api/v1/sessions/s-1/conversions", site.public_key, body)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert list(ConversionEvent.objects.values_list("type", "value", "product")) == [
        ("purchase", Decimal("49.90"), {"sku": "A1"})
    ]


def test_conversion_by_beacon_is_validated_like_json(site, api):
    assert start(api, "s-1").status_code == 201
    before = row_counts()

    unknown = beacon("/api/v1/sessions/s-1/conversions", site.public_key, {"type": "purchase", "colour": 1})
    bad_id = beacon("/api/v1/sessions/s-1/conversions", site.public_key, {"event_id": "nope", "type": "purchase"})

    assert (unknown.status_code, unknown.json()) == (400, {"colour": ["Unknown field."]})
    assert (bad_id.status_code, bad_id.json()) == (400, {"event_id": ["Must be a valid UUID."]})
    assert row_counts() == before


def test_every_browser_call_can_be_a_simple_request_without_a_preflight(site):
    """Key in the query, JSON as text/plain: no CORS preflight, one round trip less."""
    body = {"session_id": "s-9", "visitor_id": "v-9", "device": {"type": "desktop"}, "slots": []}

    started = beacon("/api/v1/sessions", site.public_key, body)
    moved = beacon("/api/v1/sessions/s-9/stage", site.public_key, {"new_stage": "consideration"})
    consented = beacon("/api/v1/consent", site.public_key, {"visitor_id": "v-9", "personalization": False})

    assert (started.status_code, moved.status_code, consented.status_code) == (201, 200, 200)
    assert started["Access-Control-Allow-Origin"] == SHOP
    assert moved.json()["journey_state"]["current_stage"] == "consideration"
    assert consented.json() == {"visitor_id": "v-9", "personalization": False, "cross_device": False}


def test_sites_list_their_own_origins(db):
    made = site_create(
        name="Two", domain="Two.Example", allowed_origins=["HTTPS://Two.Example:443/", "http://localhost:8001"]
    )

    assert made.allowed_origins == ["https://two.example", "http://localhost:8001"]
    assert site_create(name="Default", domain="three.example").allowed_origins == ["https://three.example"]
