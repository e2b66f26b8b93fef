"""Touchpoint batches: POST /api/v1/events - idempotency, quarantine, sequence numbers, metadata."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from journeys.models import IdempotencyConflict, JourneySession, QuarantinedEvent, Touchpoint
from tests.journeys.helpers import JourneySessionFactory, event, iso, post_events, row_counts, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def sessions(api):
    """Two started sessions, s-1 and s-2."""
    for session_id in ("s-1", "s-2"):
        assert start(api, session_id).status_code == 201
    return "s-1", "s-2"


def sequences(session_id):
    return list(
        Touchpoint.objects.filter(session__session_id=session_id)
        .order_by("sequence")
        .values_list("sequence", "event_id")
    )


def test_batch_stores_each_good_event_once_and_quarantines_each_bad_one(api, sessions):
    now = datetime.now(UTC)
    good_a = event("s-1", page_url="https://shop.example/a")
    good_b = event("s-2", page_url="https://shop.example/b")
    good_c = event("s-1", page_url="https://shop.example/c")
    bad = [
        event("s-1", event_id="not-a-uuid"),
        event("s-1", scroll_depth=1.5),
        {key: value for key, value in event("s-1").items() if key != "type"},
        event("s-unknown"),
        event("s-1", timestamp=iso(now + timedelta(days=1, minutes=5))),
        event("s-1", timestamp="2026-01-01T10:00:00"),
    ]
    batch = [good_a, dict(good_a), bad[0], good_b, bad[1], bad[2], bad[3], bad[4], bad[5], good_c]

    response = post_events(api, batch)

    assert response.status_code == 200
    assert response.json() == {
        "accepted": 3,
        "duplicates": 1,
        "conflicts": 0,
        "rejected": [
            {"index": 2, "event_id": "not-a-uuid", "errors": {"event_id": ["Invalid UUID"]}},
            {"index": 4, "event_id": bad[1]["event_id"], "errors": {"scroll_depth": ["Expected `float` <= 1.0"]}},
            {
                "index": 5,
                "event_id": bad[2]["event_id"],
                "errors": {"type": ["Object missing required field `type`"]},
            },
            {"index": 6, "event_id": bad[3]["event_id"], "errors": {"session_id": ["Unknown session for this site."]}},
            {
                "index": 7,
                "event_id": bad[4]["event_id"],
                "errors": {"timestamp": ["Timestamp is more than a day in the future."]},
            },
            {
                "index": 8,
                "event_id": bad[5]["event_id"],
                "errors": {"timestamp": ["Timestamp must include a timezone offset."]},
            },
        ],
    }
    stored = {str(t.event_id): t.page_url for t in Touchpoint.objects.all()}
    assert stored == {
        good_a["event_id"]: "https://shop.example/a",
        good_b["event_id"]: "https://shop.example/b",
        good_c["event_id"]: "https://shop.example/c",
    }
    quarantined = list(
        QuarantinedEvent.objects.order_by("batch_index").values_list(
            "endpoint", "batch_index", "event_id", "raw_payload", "reason"
        )
    )
    assert quarantined == [
        ("events", index, item["event_id"], raw, item["errors"])
        for item, index, raw in zip(response.json()["rejected"], [2, 4, 5, 6, 7, 8], bad, strict=True)
    ]
    assert IdempotencyConflict.objects.count() == 0


def test_event_sent_again_in_a_later_batch_is_a_duplicate_stored_once(api, sessions):
    first = event("s-1")
    post_events(api, [first])

    response = post_events(api, [dict(first)])

    assert response.json() == {"accepted": 0, "duplicates": 1, "conflicts": 0, "rejected": []}
    assert Touchpoint.objects.filter(event_id=first["event_id"]).count() == 1
    assert JourneySession.objects.get(session_id="s-1").total_touchpoints == 1
    assert IdempotencyConflict.objects.count() == 0


def test_same_event_id_with_other_content_is_a_logged_conflict_and_the_first_write_stands(api, sessions):
    first = event("s-1", page_url="https://shop.example/first")
    post_events(api, [first])
    changed = {**first, "page_url": "https://shop.example/second"}

    response = post_events(api, [changed])

    assert response.json() == {"accepted": 0, "duplicates": 0, "conflicts": 1, "rejected": []}
    touchpoint = Touchpoint.objects.get(event_id=first["event_id"])
    assert touchpoint.page_url == "https://shop.example/first"
    conflict = IdempotencyConflict.objects.get()
    assert (conflict.kind, conflict.client_id, conflict.received_payload) == ("event", first["event_id"], changed)
    assert conflict.stored_hash == touchpoint.payload_hash
    assert conflict.received_hash != touchpoint.payload_hash


def test_conflict_inside_one_batch_keeps_the_first_event(api, sessions):
    first = event("s-1", page_url="https://shop.example/first")
    changed = {**first, "page_url": "https://shop.example/second"}

    response = post_events(api, [first, changed, dict(first)])

    assert response.json() == {"accepted": 1, "duplicates": 1, "conflicts": 1, "rejected": []}
    assert list(Touchpoint.objects.values_list("page_url", flat=True)) == ["https://shop.example/first"]
    assert IdempotencyConflict.objects.get().received_payload == changed


def test_sequence_numbers_run_from_one_per_session_across_batches(api, sessions):
    first_batch = [event("s-1"), event("s-2"), event("s-1"), event("s-1")]
    second_batch = [event("s-2"), event("s-1")]

    post_events(api, first_batch)
    post_events(api, second_batch)

    assert sequences("s-1") == [
        (1, uuid.UUID(first_batch[0]["event_id"])),
        (2, uuid.UUID(first_batch[2]["event_id"])),
        (3, uuid.UUID(first_batch[3]["event_id"])),
        (4, uuid.UUID(second_batch[1]["event_id"])),
    ]
    assert sequences("s-2") == [
        (1, uuid.UUID(first_batch[1]["event_id"])),
        (2, uuid.UUID(second_batch[0]["event_id"])),
    ]
    totals = dict(JourneySession.objects.values_list("session_id", "total_touchpoints"))
    assert totals == {"s-1": 4, "s-2": 2}


def test_duplicates_and_rejects_do_not_count_as_touchpoints(api, sessions):
    good = event("s-1")

    post_events(api, [good, dict(good), event("s-1", scroll_depth=2)])

    assert JourneySession.objects.get(session_id="s-1").total_touchpoints == 1
    assert sequences("s-1") == [(1, uuid.UUID(good["event_id"]))]


def test_unknown_extra_fields_are_kept_in_metadata(api, sessions):
    with_extra = event("s-1", ab_bucket="b", experiment={"name": "hero", "arm": 2})
    plain = event("s-1")

    response = post_events(api, [with_extra, plain])

    assert response.json()["accepted"] == 2
    assert Touchpoint.objects.get(event_id=with_extra["event_id"]).metadata == {
        "ab_bucket": "b",
        "experiment": {"name": "hero", "arm": 2},
    }
    assert Touchpoint.objects.get(event_id=plain["event_id"]).metadata is None


def test_every_contract_field_is_stored_as_sent(api, sessions):
    sent_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    full = event(
        "s-1",
        type="click",
        timestamp=iso(sent_at),
        page_url="https://shop.example/p/9",
        page_title="Product 9",
        interaction_type="button",
        interaction_data={"button": "buy"},
        engagement_score=0.75,
        duration_seconds=12,
        scroll_depth=0.4,
        click_count=2,
        conversion_value="19.90",
        device_context={"orientation": "portrait"},
    )

    post_events(api, [full])

    stored = Touchpoint.objects.values(
        "type",
        "page_url",
        "page_title",
        "interaction_type",
        "interaction_data",
        "engagement_score",
        "duration_seconds",
        "scroll_depth",
        "click_count",
        "conversion_value",
        "device_context",
        "client_timestamp",
        "sequence",
    ).get(event_id=full["event_id"])
    assert stored == {
        "type": "click",
        "page_url": "https://shop.example/p/9",
        "page_title": "Product 9",
        "interaction_type": "button",
        "interaction_data": {"button": "buy"},
        "engagement_score": 0.75,
        "duration_seconds": 12,
        "scroll_depth": 0.4,
        "click_count": 2,
        "conversion_value": Decimal("19.90"),
        "device_context": {"orientation": "portrait"},
        "client_timestamp": sent_at,
        "sequence": 1,
    }


def test_session_last_activity_moves_to_the_latest_event(api, site):
    hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    JourneySessionFactory(site=site, session_id="s-old", started_at=hour_ago)
    latest = hour_ago + timedelta(minutes=30)

    post_events(api, [event("s-old", timestamp=iso(latest)), event("s-old", timestamp=iso(hour_ago))])

    assert JourneySession.objects.get(session_id="s-old").last_activity_at == latest


def test_event_in_the_near_future_moves_last_activity_only_to_now(api, site):
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    JourneySessionFactory(site=site, session_id="s-old", started_at=hour_ago)

    response = post_events(api, [event("s-old", timestamp=iso(datetime.now(UTC) + timedelta(hours=2)))])

    assert response.json()["accepted"] == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")  # the database's now, as the ingestion UPDATE saw it
        database_now = cursor.fetchone()[0]
    assert JourneySession.objects.get(session_id="s-old").last_activity_at == database_now


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"event_id": 42}, {"event_id": ["Expected `uuid`, got `int`"]}),
        (
            {"session_id": ""},
            {
                "session_id": [
                    "Use 1 to 100 of the characters A-Z a-z 0-9 - _ . ~ (usable in a URL as they are), "
                    "not starting with '.'."
                ]
            },
        ),
        ({"engagement_score": -0.1}, {"engagement_score": ["Expected `float` >= 0.0"]}),
        ({"click_count": -1}, {"click_count": ["Expected `int` >= 0"]}),
        ({"timestamp": "yesterday"}, {"timestamp": ["Invalid RFC3339 encoded datetime"]}),
        ({"conversion_value": "abc"}, {"conversion_value": ["Not a number."]}),
        ({"conversion_value": "NaN"}, {"conversion_value": ["Not a number."]}),
        ({"conversion_value": "-1"}, {"conversion_value": ["Must be between 0 and 9999999999.99."]}),
        ({"page_title": "x" * 256}, {"page_title": ["Expected `str` of length <= 255"]}),
    ],
)
def test_bad_event_is_quarantined_naming_the_field(api, sessions, fields, errors):
    bad = event("s-1", **fields)
    before = Touchpoint.objects.count()

    response = post_events(api, [bad])

    assert response.status_code == 200
    event_id = bad["event_id"] if isinstance(bad["event_id"], str) else None
    assert response.json() == {
        "accepted": 0,
        "duplicates": 0,
        "conflicts": 0,
        "rejected": [{"index": 0, "event_id": event_id, "errors": errors}],
    }
    assert Touchpoint.objects.count() == before
    quarantined = QuarantinedEvent.objects.get()
    assert (quarantined.raw_payload, quarantined.reason, quarantined.batch_index) == (bad, errors, 0)


def test_event_that_is_not_an_object_is_quarantined(api, sessions):
    response = post_events(api, ["page_view", event("s-1")])

    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "conflicts": 0,
        "rejected": [
            {"index": 0, "event_id": None, "errors": {"non_field_errors": ["Each event must be a JSON object."]}}
        ],
    }
    assert QuarantinedEvent.objects.get().raw_payload == "page_view"


def test_event_for_a_session_of_another_site_is_rejected_as_unknown(api, other_site, client_for, sessions):
    other = client_for(other_site)
    foreign = event("s-1")

    response = post_events(other, [foreign])

    assert response.json()["rejected"] == [
        {"index": 0, "event_id": foreign["event_id"], "errors": {"session_id": ["Unknown session for this site."]}}
    ]
    assert Touchpoint.objects.count() == 0
    assert JourneySession.objects.get(session_id="s-1").total_touchpoints == 0
    assert QuarantinedEvent.objects.get().site == other_site


def test_event_id_is_unique_per_site_not_globally(api, other_site, client_for, sessions):
    shared_id = str(uuid.uuid4())
    assert start(client_for(other_site), "s-1").status_code == 201

    first = post_events(api, [event("s-1", event_id=shared_id)])
    second = post_events(client_for(other_site), [event("s-1", event_id=shared_id)])

    assert (first.json()["accepted"], second.json()["accepted"]) == (1, 1)
    assert Touchpoint.objects.filter(event_id=shared_id).count() == 2


def test_event_with_a_nul_character_is_quarantined_not_a_server_error(api, sessions):
    bad = event("s-1", page_url="https://shop.example/\u0000")
    good = event("s-1")

    response = post_events(api, [bad, good])

    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "conflicts": 0,
        "rejected": [
            {
                "index": 0,
                "event_id": bad["event_id"],
                "errors": {"page_url": ["Text must not contain NUL characters or unpaired surrogates."]},
            }
        ],
    }
    assert list(Touchpoint.objects.values_list("event_id", flat=True)) == [uuid.UUID(good["event_id"])]
    quarantined = QuarantinedEvent.objects.get()
    assert quarantined.raw_payload is None
    assert quarantined.raw_text.startswith("{")
    assert "\\u0000" in quarantined.raw_text


def test_refused_batch_changes_no_row_counts(api, sessions):
    before = row_counts()

    response = api.post("/api/v1/events", {"events": [event("s-1")], "extra": 1}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "Unknown top-level fields: extra.", "code": "invalid", "field": "extra"}
    assert row_counts() == before
