"""Conversions: POST /api/v1/sessions/{session_id}/conversions."""

import uuid
from decimal import Decimal

import pytest

from journeys.models import ConversionEvent, IdempotencyConflict, JourneySession, StageTransition
from tests.journeys.helpers import event, move, post_events, row_counts, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def session_id(api):
    """A mobile TikTok session from a tech campaign, moved to decision, with two touchpoints."""
    start(api, "s-1", entry_point={"source": "tiktok", "campaign": "viral_tech"})
    move(api, "s-1", "consideration", trigger_event="gallery")
    move(api, "s-1", "decision", trigger_event="cart")
    post_events(api, [event("s-1"), event("s-1")])
    return "s-1"


def convert(api, session_id, **fields):
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "purchase",
        "value": "49.90",
        "currency": "EUR",
        "product": {"sku": "A1"},
        **fields,
    }
    return body, api.post(f"/api/v1/sessions/{session_id}/conversions", body, format="json")


def stage_history(session_id):
    return list(
        StageTransition.objects.filter(session__session_id=session_id)
        .order_by("created_at", "id")
        .values_list("from_stage", "to_stage", "trigger_event")
    )


def test_conversion_is_recorded_with_the_journey_that_led_to_it(api, session_id):
    body, response = convert(api, session_id, funnel_step="checkout")

    assert response.status_code == 201
    conversion = ConversionEvent.objects.get()
    assert response.json() == {
        "conversion_id": conversion.pk,
        "event_id": body["event_id"],
        "duplicate": False,
        "attribution": {
            "journey_path": "mobile_tiktok_fast_track",
            "source": "tiktok",
            "campaign": "viral_tech",
            "device_type": "mobile",
            "persona": "TechEarlyAdopter",
            "stages": ["awareness", "consideration", "decision"],
            "touchpoints": 2,
            "variants": [],
            "offers": [],
            "scarcity": [],
        },
    }
    assert (conversion.type, conversion.value, conversion.currency, conversion.product, conversion.funnel_step) == (
        "purchase",
        Decimal("49.90"),
        "EUR",
        {"sku": "A1"},
        "checkout",
    )
    assert conversion.session.session_id == session_id
    assert conversion.attribution == response.json()["attribution"]


def test_same_event_id_again_is_a_duplicate_stored_once(api, session_id):
    body, first = convert(api, session_id)
    transitions = stage_history(session_id)

    second = api.post(f"/api/v1/sessions/{session_id}/conversions", body, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == {**first.json(), "duplicate": True}
    assert ConversionEvent.objects.count() == 1
    assert IdempotencyConflict.objects.count() == 0
    assert stage_history(session_id) == transitions


def test_same_event_id_with_other_payload_is_a_logged_conflict_and_the_first_stands(api, session_id):
    body, _ = convert(api, session_id)
    changed = {**body, "value": "99.00"}

    response = api.post(f"/api/v1/sessions/{session_id}/conversions", changed, format="json")

    assert response.status_code == 200
    assert (response.json()["duplicate"], response.json()["conflict"]) == (True, True)
    assert list(ConversionEvent.objects.values_list("value", flat=True)) == [Decimal("49.90")]
    conflict = IdempotencyConflict.objects.get()
    assert (conflict.kind, conflict.client_id) == ("conversion", body["event_id"])
    assert conflict.received_payload == {**changed, "session_id": session_id}
    assert conflict.stored_hash == ConversionEvent.objects.get().payload_hash


@pytest.mark.parametrize("conversion_type", ["purchase", "consultation_booking"])
def test_purchase_like_conversion_moves_the_session_to_the_conversion_stage(api, session_id, conversion_type):
    convert(api, session_id, type=conversion_type)

    session = JourneySession.objects.get(session_id=session_id)
    # conversion prior 0.95, no intent signals, not returning, no engagement score
    assert (session.current_stage, session.max_stage, session.conversion_probability) == (
        "conversion",
        "conversion",
        0.95,
    )
    assert stage_history(session_id)[-1] == ("decision", "conversion", f"conversion:{conversion_type}")


@pytest.mark.parametrize("conversion_type", ["email_signup", "download"])
def test_other_conversions_leave_the_stage_alone(api, session_id, conversion_type):
    transitions = stage_history(session_id)

    _, response = convert(api, session_id, type=conversion_type, value="0")

    assert response.status_code == 201
    assert JourneySession.objects.get(session_id=session_id).current_stage == "decision"
    assert stage_history(session_id) == transitions
    assert ConversionEvent.objects.get().type == conversion_type


def test_purchase_in_retention_does_not_move_the_session_back(api, session_id):
    move(api, session_id, "retention", trigger_event="repeat_visit")
    transitions = stage_history(session_id)

    convert(api, session_id)

    assert JourneySession.objects.get(session_id=session_id).current_stage == "retention"
    assert stage_history(session_id) == transitions


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"value": "-1"}, {"value": ["Ensure this value is greater than or equal to 0."]}),
        ({"value": "abc"}, {"value": ["A valid number is required."]}),
        ({"value": "1.234"}, {"value": ["Ensure that there are no more than 2 decimal places."]}),
        ({"currency": "eur"}, {"currency": ["This value does not match the required pattern."]}),
        ({"currency": "EURO"}, {"currency": ["This value does not match the required pattern."]}),
        ({"event_id": "not-a-uuid"}, {"event_id": ["Must be a valid UUID."]}),
        ({"coupon": "X"}, {"coupon": ["Unknown field."]}),
    ],
)
def test_bad_conversion_is_refused_naming_the_field_and_writes_nothing(api, session_id, fields, errors):
    before = row_counts()

    _, response = convert(api, session_id, **fields)

    assert response.status_code == 400
    assert response.json() == errors
    assert row_counts() == before
    assert JourneySession.objects.get(session_id=session_id).current_stage == "decision"


def test_conversion_for_an_unknown_session_is_404_and_writes_nothing(api, session_id):
    before = row_counts()

    _, response = convert(api, "s-missing")

    assert response.status_code == 404
    assert response.json() == {"detail": "No session 's-missing' for this site.", "code": "session_not_found"}
    assert row_counts() == before
