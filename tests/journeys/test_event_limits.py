"""Whole-batch refusals of POST /api/v1/events: malformed and oversized bodies write nothing."""

import json

import pytest

from journeys.models import Touchpoint
from tests.journeys.helpers import EVENTS_URL, event, post_events, row_counts, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def session_id(api):
    assert start(api, "s-1").status_code == 201
    return "s-1"


def post_raw(api, body: bytes):
    return api.post(EVENTS_URL, data=body, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"events": [', "Malformed JSON: Input data was truncated."),
        (b'{"events": []} trailing', "Malformed JSON: JSON is malformed: trailing characters (byte 16)."),
        (b"", "Malformed JSON: Input data was truncated."),
    ],
)
def test_malformed_json_is_refused_with_400_and_nothing_written(api, session_id, body, detail):
    before = row_counts()

    response = post_raw(api, body)

    assert response.status_code == 400
    assert response.json() == {"detail": detail, "code": "parse_error", "field": "body"}
    assert row_counts() == before


@pytest.mark.parametrize(
    "document",
    [
        [{"event_id": "x"}],
        "events",
        {"items": []},
        {"events": {"event_id": "x"}},
        {"events": None},
    ],
)
def test_body_without_an_events_list_is_refused_with_400_and_nothing_written(api, session_id, document):
    before = row_counts()

    response = post_raw(api, json.dumps(document).encode())

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Body must be an object with an 'events' list.",
        "code": "invalid",
        "field": "events",
    }
    assert row_counts() == before


def test_empty_events_list_is_refused_with_400(api, session_id):
    before = row_counts()

    response = post_events(api, [])

    assert response.status_code == 400
    assert response.json() == {"detail": "The 'events' list is empty.", "code": "invalid", "field": "events"}
    assert row_counts() == before


def test_more_than_1000_events_is_refused_with_413_and_nothing_written(api, session_id):
    before = row_counts()
    batch = [event(session_id) for _ in range(1001)]

    response = post_events(api, batch)

    assert response.status_code == 413
    assert response.json() == {"detail": "Batch has 1001 events; the limit is 1000.", "code": "too_many_events"}
    assert row_counts() == before


def test_exactly_1000_events_are_accepted(api, session_id):
    response = post_events(api, [event(session_id) for _ in range(1000)])

    assert response.status_code == 200
    assert response.json() == {"accepted": 1000, "duplicates": 0, "conflicts": 0, "rejected": []}
    assert Touchpoint.objects.count() == 1000


def test_body_over_1_mb_is_refused_with_413_and_nothing_written(api, session_id):
    # 40 events of about 30 KB: each is under the per-event limit, together over 1 MB.
    batch = [event(session_id, page_title="t", page_url="https://shop.example/" + "x" * 30_000) for _ in range(40)]
    body = json.dumps({"events": batch}).encode()
    assert 1024 * 1024 < len(body) < 2 * 1024 * 1024
    before = row_counts()

    response = post_raw(api, body)

    assert response.status_code == 413
    assert response.json() == {"detail": "Batch body is over 1048576 bytes.", "code": "batch_too_large"}
    assert row_counts() == before


def test_body_over_the_upload_limit_is_refused_with_413_json_too(api, session_id):
    # Bigger than Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2 MB): still the batch limit's 413, as JSON.
    body = json.dumps({"events": [event(session_id, page_url="x" * 3_000_000)]}).encode()
    before = row_counts()

    response = post_raw(api, body)

    assert response.status_code == 413
    assert response.json() == {"detail": "Batch body is over 1048576 bytes.", "code": "batch_too_large"}
    assert row_counts() == before


def test_one_event_over_32_kb_refuses_the_whole_batch_with_413(api, session_id):
    big = event(session_id, page_url="https://shop.example/" + "x" * 33_000)
    size = len(json.dumps(big, sort_keys=True, separators=(",", ":")).encode())
    batch = [event(session_id), event(session_id, scroll_depth=3), big]
    before = row_counts()

    response = post_events(api, batch)

    assert response.status_code == 413
    assert response.json() == {
        "detail": f"Event 2 is {size} bytes; the limit is 32768.",
        "code": "event_too_large",
        "index": 2,
    }
    assert row_counts() == before
