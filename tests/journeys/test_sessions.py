"""Session start: POST /api/v1/sessions - idempotency, persona, returning, fingerprint, start probability."""

import hashlib
import hmac

import pytest
from django.conf import settings

from journeys.models import IdempotencyConflict, JourneySession, PersonaChange, StageTransition, Visitor
from tests.journeys.helpers import row_counts, start, tables_containing

pytestmark = pytest.mark.django_db

MOBILE_AWARENESS_HINTS = {
    "device": "mobile",
    "stage": "awareness",
    "loading_priority": "hero_content_first",
    "interaction_hints": "swipe_indicators",
    "content_density": "high_visual_low_text",
    "performance_budget": "aggressive",
}


def test_new_session_answers_201_with_journey_state_and_first_decision(api):
    response = start(api, "s-1", visitor_id="v-1")

    assert response.status_code == 201
    # probability 0.15 (awareness prior, no signals); strength 0.4 * 0.15 + 0.3 * 0.15 + 0.1 * 0.5 = 0.155
    next_best_action = {
        "recommended_action": "engagement_building",
        "timing": "gradual_building",
        "personalization": "interest_development_content",
        "scarcity_trigger": "subtle_indicators",
        "intent_strength": 0.155,
    }
    body = response.json()
    assert {
        key: body[key] for key in ("session_id", "visitor_id", "created", "session_idle_seconds", "journey_state")
    } == {
        "session_id": "s-1",
        "visitor_id": "v-1",
        "created": True,
        "session_idle_seconds": 1800,
        "journey_state": {
            "current_stage": "awareness",
            "journey_path": "mobile_tiktok_fast_track",
            "conversion_probability": 0.15,
            "persona": {"type": "StudentHustler", "confidence": 0.6},
            "next_best_action": next_best_action,
        },
    }
    # The decision engine (personalization) owns the rest of the block; these parts come from the journey.
    decision = body["decision"]
    assert {key: decision[key] for key in ("session_id", "slots", "scarcity", "layout_hints", "next_best_action")} == {
        "session_id": "s-1",
        "slots": {},
        "scarcity": [],
        "layout_hints": MOBILE_AWARENESS_HINTS,
        "next_best_action": next_best_action,
    }


def test_same_session_id_twice_gives_one_session(api):
    first = start(api, "s-1")

    second = start(api, "s-1")

    assert (first.status_code, second.status_code) == (201, 200)
    first_body, second_body = first.json(), second.json()
    # each answer's decision is made when it is asked (its server_time says when)
    assert first_body["decision"].pop("server_time") <= second_body["decision"].pop("server_time")
    assert second_body == {**first_body, "created": False}
    assert JourneySession.objects.filter(session_id="s-1").count() == 1
    assert StageTransition.objects.count() == 1
    assert Visitor.objects.get(visitor_id="v-s-1").session_count == 1
    assert IdempotencyConflict.objects.count() == 0


def test_repeat_returns_the_current_state_of_the_session(api):
    start(api, "s-1")
    api.post("/api/v1/sessions/s-1/stage", {"new_stage": "decision"}, format="json")

    repeat = start(api, "s-1")

    assert repeat.status_code == 200
    assert repeat.json()["journey_state"]["current_stage"] == "decision"
    assert repeat.json()["journey_state"]["conversion_probability"] == 0.55


def test_repeat_with_different_payload_keeps_the_first_and_logs_one_conflict(api):
    start(api, "s-1", device="mobile", source="tiktok")
    before = JourneySession.objects.values().get(session_id="s-1")

    response = start(api, "s-1", device="desktop", source="google")

    assert response.status_code == 200
    assert response.json()["conflict"] is True
    assert response.json()["created"] is False
    assert response.json()["journey_state"]["journey_path"] == "mobile_tiktok_fast_track"
    assert JourneySession.objects.values().get(session_id="s-1") == before
    conflict = IdempotencyConflict.objects.get()
    assert (conflict.kind, conflict.client_id) == ("session", "s-1")
    assert conflict.stored_hash == before["request_hash"]
    assert conflict.received_hash != conflict.stored_hash
    assert conflict.received_payload == {
        "session_id": "s-1",
        "visitor_id": "v-s-1",
        "device": {"type": "desktop"},
        "entry_point": {"source": "google"},
    }


def test_persona_sent_by_the_client_is_kept_with_its_confidence(api):
    response = start(api, "s-1", persona={"type": "TechEarlyAdopter", "confidence": 0.85})

    assert response.json()["journey_state"]["persona"] == {"type": "TechEarlyAdopter", "confidence": 0.85}
    session = JourneySession.objects.get(session_id="s-1")
    assert (session.persona_type, session.persona_confidence, session.persona_source) == (
        "TechEarlyAdopter",
        0.85,
        "client",
    )
    visitor = Visitor.objects.get(visitor_id="v-s-1")
    assert (visitor.persona, visitor.persona_confidence) == ("TechEarlyAdopter", 0.85)


def test_client_persona_without_confidence_gets_0_5(api):
    start(api, "s-1", persona={"type": "Researcher"})

    session = JourneySession.objects.get(session_id="s-1")
    assert (session.persona_type, session.persona_confidence, session.persona_source) == ("Researcher", 0.5, "client")


@pytest.mark.parametrize(
    ("device", "source", "extra", "persona", "confidence"),
    [
        ("desktop", "google", {}, "Researcher", 0.7),
        ("mobile", "tiktok", {"entry_point": {"source": "tiktok", "campaign": "viral_tech"}}, "TechEarlyAdopter", 0.7),
        ("mobile", "instagram", {}, "StudentHustler", 0.6),
        ("mobile", "instagram", {"intent_signals": {"price_sensitivity": 0.8}}, "BargainHunter", 0.75),
        ("tablet", "linkedin", {}, "BusinessOwner", 0.7),
        ("tablet", "direct", {"intent_signals": {"research_depth": 0.6}}, "Researcher", 0.7),
        ("tablet", "direct", {}, "General", 0.3),
    ],
)
def test_persona_is_assigned_by_rules_when_the_client_sends_none(api, device, source, extra, persona, confidence):
    response = start(api, "s-1", device=device, source=source, **extra)

    assert response.status_code == 201, response.json()
    session = JourneySession.objects.get(session_id="s-1")
    assert (session.persona_type, session.persona_confidence, session.persona_source) == (persona, confidence, "rules")


def test_persona_evolution_across_sessions_of_one_visitor_is_recorded(api):
    start(api, "s-a", visitor_id="v-1", device="mobile", source="tiktok")
    start(api, "s-b", visitor_id="v-1", device="desktop", source="google")

    start(api, "s-c", visitor_id="v-1", device="desktop", source="google")

    changes = list(
        PersonaChange.objects.filter(visitor__visitor_id="v-1").values_list(
            "session__session_id", "from_persona", "to_persona", "confidence", "source"
        )
    )
    assert changes == [
        ("s-a", "", "StudentHustler", 0.6, "rules"),
        ("s-b", "StudentHustler", "Researcher", 0.7, "rules"),
    ]
    visitor = Visitor.objects.get(visitor_id="v-1")
    assert (visitor.persona, visitor.persona_confidence, visitor.session_count) == ("Researcher", 0.7, 3)


def test_second_session_of_a_visitor_is_returning_without_the_client_saying_so(api):
    first = start(api, "s-a", visitor_id="v-1", device="tablet", source="direct")

    second = start(api, "s-b", visitor_id="v-1", device="tablet", source="direct")

    assert first.json()["journey_state"]["journey_path"] == "standard_conversion_funnel"
    assert second.json()["journey_state"]["journey_path"] == "returning_visitor_personalized"
    # 0.15 + 0.05 returning uplift
    assert second.json()["journey_state"]["conversion_probability"] == 0.2
    assert list(JourneySession.objects.order_by("session_id").values_list("session_id", "returning")) == [
        ("s-a", False),
        ("s-b", True),
    ]


def test_visitor_history_wins_over_a_client_saying_not_returning(api):
    start(api, "s-a", visitor_id="v-1")

    start(api, "s-b", visitor_id="v-1", returning=False)

    assert JourneySession.objects.get(session_id="s-b").returning is True


def test_first_session_is_returning_when_the_client_says_so(api):
    start(api, "s-a", visitor_id="v-1", device="tablet", source="direct", returning=True)

    session = JourneySession.objects.get(session_id="s-a")
    assert (session.returning, session.journey_path, session.persona_type) == (
        True,
        "returning_visitor_personalized",
        "LoyalCustomer",
    )


def keyed(fingerprint: str) -> str:
    """HMAC-SHA256 under HASH_KEY with the "fingerprint" purpose, as core/hashing.py documents."""
    return hmac.new(f"{settings.HASH_KEY}:fingerprint".encode(), fingerprint.encode(), hashlib.sha256).hexdigest()


def test_fingerprint_is_stored_only_as_its_keyed_hash(api):
    fingerprint = "fp-raw-7f3a9c"

    start(api, "s-1", device={"type": "mobile", "fingerprint": fingerprint})

    session = JourneySession.objects.get(session_id="s-1")
    assert session.device_fingerprint_hash == keyed(fingerprint)
    assert tables_containing(fingerprint) == []


def test_fingerprint_of_a_conflicting_repeat_is_not_stored_raw(api):
    start(api, "s-1", device={"type": "mobile", "fingerprint": "fp-first-1111"})

    response = start(api, "s-1", device={"type": "mobile", "fingerprint": "fp-second-2222"})

    assert response.json()["conflict"] is True
    conflict = IdempotencyConflict.objects.get()
    assert conflict.received_payload["device"] == {"type": "mobile", "fingerprint": keyed("fp-second-2222")}
    assert tables_containing("fp-first-1111") == []
    assert tables_containing("fp-second-2222") == []


@pytest.mark.parametrize(
    ("intent", "returning", "probability"),
    [
        ({"purchase_intent": 0.0}, False, 0.1),  # 0.15 - 0.15 = 0.00, clamped to 0.1
        ({"purchase_intent": 0.1}, False, 0.1),  # 0.15 - 0.12 = 0.03, clamped to 0.1
        ({"purchase_intent": 0.9}, True, 0.32),  # 0.15 + 0.12 + 0.05 = 0.32
        ({"purchase_intent": 1.0}, True, 0.35),  # 0.15 + 0.15 + 0.05 = 0.35 (0.9 is out of reach at start)
        ({}, False, 0.15),
    ],
)
def test_start_probability_follows_the_prior_clamped_to_0_1_and_0_9(api, intent, returning, probability):
    response = start(api, "s-1", intent_signals=intent, returning=returning)

    assert response.json()["journey_state"]["conversion_probability"] == probability
    assert JourneySession.objects.get(session_id="s-1").conversion_probability == probability
    assert StageTransition.objects.get(session__session_id="s-1").conversion_probability == probability


def test_consent_sent_with_the_session_start_is_recorded(api):
    start(api, "s-1", visitor_id="v-1", consent={"personalization": True, "cross_device": False})

    visitor = Visitor.objects.get(visitor_id="v-1")
    assert (visitor.consent_personalization, visitor.consent_cross_device) == (True, False)
    assert visitor.consent_personalization_at is not None
    assert visitor.consent_cross_device_at is None


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"device": {"type": "watch"}}, {"device": {"type": ['"watch" is not a valid choice.']}}),
        (
            {"intent_signals": {"purchase_intent": 1.5}},
            {"intent_signals": {"purchase_intent": ["Ensure this value is less than or equal to 1.0."]}},
        ),
        (
            {"persona": {"type": "Researcher", "confidence": -0.1}},
            {"persona": {"confidence": ["Ensure this value is greater than or equal to 0.0."]}},
        ),
        ({"colour": "blue"}, {"colour": ["Unknown field."]}),
        ({"device": {"type": "mobile", "os": "ios"}}, {"device": {"os": ["Unknown field."]}}),
    ],
)
def test_bad_start_is_refused_naming_the_field_and_writes_nothing(api, fields, errors):
    before = row_counts()

    response = start(api, "s-1", **fields)

    assert response.status_code == 400
    assert response.json() == errors
    assert row_counts() == before


def test_missing_visitor_id_is_refused_naming_the_field(api):
    response = api.post("/api/v1/sessions", {"session_id": "s-1", "device": {"type": "mobile"}}, format="json")

    assert response.status_code == 400
    assert response.json() == {"visitor_id": ["This field is required."]}
    assert JourneySession.objects.count() == 0


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800"])
def test_text_postgres_cannot_store_is_refused_naming_the_field(api, escape):
    body = (
        '{"session_id": "s-1", "visitor_id": "v-1", "device": {"type": "mobile"},'
        f' "entry_point": {{"source": "tiktok", "note": "a{escape}b"}}}}'
    ).encode()
    before = row_counts()

    response = api.post("/api/v1/sessions", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "entry_point": ["Text must not contain NUL characters or unpaired surrogates. (at note)"]
    }
    assert row_counts() == before


def test_unstorable_text_in_a_field_name_is_refused_as_a_parse_error(api):
    body = b'{"session_id": "s-1", "visitor_id": "v-1", "device": {"type": "mobile"}, "x\\u0000": 1}'

    response = api.post("/api/v1/sessions", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Text must not contain NUL characters or unpaired surrogates.",
        "code": "parse_error",
        "field": "body",
    }
    assert JourneySession.objects.count() == 0
