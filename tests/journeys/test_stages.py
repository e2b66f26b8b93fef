"""Stage moves: POST /api/v1/sessions/{session_id}/stage.

Expected probabilities are worked out by hand from the formula documented in
journeys/intelligence.py::conversion_probability_prior:

    prior(stage) + 0.30 * (purchase_intent - 0.5) + 0.05 * returning + 0.20 * (engagement_score - 0.5)

with priors awareness 0.15, consideration 0.30, decision 0.55, conversion 0.95,
retention 0.60, clamped to [0.1, 0.9] at start and [0.01, 0.99] afterwards, rounded to 4 places.
"""

import pytest

from journeys.intelligence import conversion_probability_prior
from journeys.models import JourneySession, StageTransition
from tests.journeys.helpers import move, row_counts, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def session_id(api):
    """A new mobile TikTok session whose visitor shows purchase intent 0.7."""
    response = start(api, "s-1", intent_signals={"purchase_intent": 0.7})
    assert response.status_code == 201, response.json()
    return "s-1"


def transitions(session_id):
    return list(
        StageTransition.objects.filter(session__session_id=session_id)
        .order_by("created_at", "id")
        .values_list("from_stage", "to_stage", "trigger_event")
    )


def test_session_starts_in_awareness_with_the_start_prior(api, session_id):
    session = JourneySession.objects.get(session_id=session_id)

    # 0.15 + 0.30 * (0.7 - 0.5) = 0.21
    assert (session.current_stage, session.max_stage, session.conversion_probability) == (
        "awareness",
        "awareness",
        0.21,
    )
    assert transitions(session_id) == [("", "awareness", "session_start")]


@pytest.mark.parametrize(
    ("stage", "probability"),
    [
        ("awareness", 0.21),  # 0.15 + 0.06
        ("consideration", 0.36),  # 0.30 + 0.06
        ("decision", 0.61),  # 0.55 + 0.06
        ("conversion", 0.99),  # 0.95 + 0.06 = 1.01, clamped to 0.99
        ("retention", 0.66),  # 0.60 + 0.06
    ],
)
def test_each_stage_is_reachable_from_awareness(api, session_id, stage, probability):
    response = move(api, session_id, stage, trigger_event=f"to_{stage}")

    assert response.status_code == 200, response.json()
    assert response.json()["journey_state"]["current_stage"] == stage
    assert response.json()["journey_state"]["conversion_probability"] == probability
    session = JourneySession.objects.get(session_id=session_id)
    assert (session.current_stage, session.max_stage, session.conversion_probability) == (stage, stage, probability)
    assert transitions(session_id) == [("", "awareness", "session_start"), ("awareness", stage, f"to_{stage}")]


def test_stage_move_records_transition_with_engagement_and_context(api, session_id):
    engagement = {"time_on_page": 45.0, "scroll_depth": 0.8, "interaction_count": 3, "engagement_score": 0.9}

    response = move(
        api,
        session_id,
        "consideration",
        trigger_event="product_gallery_viewed",
        engagement=engagement,
        context={"page": "gallery"},
    )

    assert response.status_code == 200, response.json()
    # 0.30 + 0.30 * (0.7 - 0.5) + 0.20 * (0.9 - 0.5) = 0.30 + 0.06 + 0.08 = 0.44
    # intent strength 0.4 * 0.7 + 0.2 * 0 + 0.3 * 0.44 + 0.1 * (1 - 0.5) = 0.462 -> engagement building
    assert response.json() == {
        "session_id": session_id,
        "journey_state": {
            "current_stage": "consideration",
            "journey_path": "mobile_tiktok_fast_track",
            "conversion_probability": 0.44,
            "persona": {"type": "StudentHustler", "confidence": 0.6},
            "next_best_action": {
                "recommended_action": "engagement_building",
                "timing": "gradual_building",
                "personalization": "interest_development_content",
                "scarcity_trigger": "subtle_indicators",
                "intent_strength": 0.462,
            },
        },
        "recommendations": [],
        "scarcity_triggers": [],
        "layout_hints": {"device": "mobile", "stage": "consideration"},
    }
    transition = StageTransition.objects.get(session__session_id=session_id, to_stage="consideration")
    assert transition.from_stage == "awareness"
    assert transition.trigger_event == "product_gallery_viewed"
    assert transition.engagement == engagement
    assert transition.context == {"page": "gallery"}
    assert transition.conversion_probability == 0.44
    assert JourneySession.objects.get(session_id=session_id).engagement == engagement


def test_backward_move_is_allowed_and_keeps_max_stage(api, session_id):
    move(api, session_id, "decision", trigger_event="checkout_opened")

    response = move(api, session_id, "consideration", trigger_event="back_to_gallery")

    assert response.status_code == 200, response.json()
    session = JourneySession.objects.get(session_id=session_id)
    assert (session.current_stage, session.max_stage) == ("consideration", "decision")
    assert session.conversion_probability == 0.36
    assert transitions(session_id) == [
        ("", "awareness", "session_start"),
        ("awareness", "decision", "checkout_opened"),
        ("decision", "consideration", "back_to_gallery"),
    ]


def test_move_to_the_current_stage_is_recorded_too(api, session_id):
    response = move(api, session_id, "awareness", trigger_event="reload")

    assert response.status_code == 200, response.json()
    assert transitions(session_id) == [("", "awareness", "session_start"), ("awareness", "awareness", "reload")]


def test_returning_visitor_gets_the_returning_uplift_on_stage_moves(api):
    start(api, "s-r", returning=True, intent_signals={"purchase_intent": 0.5})

    response = move(api, "s-r", "decision", engagement={"engagement_score": 0.25})

    # 0.55 + 0.30 * 0 + 0.05 + 0.20 * (0.25 - 0.5) = 0.55 + 0.05 - 0.05 = 0.55
    assert response.json()["journey_state"]["conversion_probability"] == 0.55


def test_running_probability_is_clamped_below_at_0_01(api):
    start(api, "s-low", intent_signals={"purchase_intent": 0.0})

    response = move(api, "s-low", "awareness", engagement={"engagement_score": 0.0})

    # 0.15 - 0.15 - 0.10 = -0.10, clamped to 0.01
    assert response.json()["journey_state"]["conversion_probability"] == 0.01


def test_running_probability_is_clamped_above_at_0_99(api):
    start(api, "s-high", intent_signals={"purchase_intent": 1.0})

    response = move(api, "s-high", "conversion", engagement={"engagement_score": 1.0})

    # 0.95 + 0.15 + 0.10 = 1.20, clamped to 0.99
    assert response.json()["journey_state"]["conversion_probability"] == 0.99


def test_start_clamp_caps_the_prior_at_0_9():
    # No stage a session starts in reaches 0.9, so the upper start clamp is checked on the function:
    # 0.95 + 0.30 * (1.0 - 0.5) + 0.05 = 1.15, clamped to 0.9.
    assert (
        conversion_probability_prior(stage="conversion", intent={"purchase_intent": 1.0}, returning=True, start=True)
        == 0.9
    )


def test_decision_stage_with_strong_intent_prompts_immediate_conversion(api):
    start(api, "s-hot", intent_signals={"purchase_intent": 1.0, "urgency": 1.0, "price_sensitivity": 0.0})

    response = move(api, "s-hot", "decision", engagement={"engagement_score": 1.0})

    # probability 0.55 + 0.15 + 0.10 = 0.80; strength 0.4 + 0.2 + 0.3 * 0.8 + 0.1 * 1.0 = 0.94
    action = response.json()["journey_state"]["next_best_action"]
    assert (action["recommended_action"], action["intent_strength"]) == ("immediate_conversion_prompt", 0.94)


def test_unknown_session_answers_404_json_and_writes_nothing(api, session_id):
    before = row_counts()

    response = move(api, "s-missing", "decision")

    assert response.status_code == 404
    assert response.json() == {"detail": "No session 's-missing' for this site.", "code": "session_not_found"}
    assert row_counts() == before


def test_bad_new_stage_is_refused_naming_the_field(api, session_id):
    before = row_counts()

    response = move(api, session_id, "purchase")

    assert response.status_code == 400
    assert response.json() == {"new_stage": ['"purchase" is not a valid choice.']}
    assert row_counts() == before
    assert JourneySession.objects.get(session_id=session_id).current_stage == "awareness"


def test_missing_new_stage_is_refused_naming_the_field(api, session_id):
    response = api.post(f"/api/v1/sessions/{session_id}/stage", {"trigger_event": "x"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"new_stage": ["This field is required."]}


def test_unknown_field_is_refused_naming_it(api, session_id):
    before = row_counts()

    response = move(api, session_id, "decision", mood="happy")

    assert response.status_code == 400
    assert response.json() == {"mood": ["Unknown field."]}
    assert row_counts() == before
    assert JourneySession.objects.get(session_id=session_id).current_stage == "awareness"


def test_unknown_engagement_field_is_refused_naming_it(api, session_id):
    before = row_counts()

    response = move(api, session_id, "decision", engagement={"dwell": 3})

    assert response.status_code == 400
    assert response.json() == {"engagement": {"dwell": ["Unknown field."]}}
    assert row_counts() == before


def test_engagement_score_above_one_is_refused_naming_the_field(api, session_id):
    before = row_counts()

    response = move(api, session_id, "decision", engagement={"engagement_score": 1.5})

    assert response.status_code == 400
    assert response.json() == {"engagement": {"engagement_score": ["Ensure this value is less than or equal to 1.0."]}}
    assert row_counts() == before


def test_nul_character_in_the_context_is_refused_naming_the_field(api, session_id):
    before = row_counts()

    response = api.post(
        f"/api/v1/sessions/{session_id}/stage",
        data=b'{"new_stage": "decision", "context": {"note": "\\u0000"}}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json() == {"context": ["Text must not contain NUL characters or unpaired surrogates. (at note)"]}
    assert row_counts() == before
