"""Cross-device identity (POST /api/v1/identify) and consent (POST /api/v1/consent)."""

import hashlib
import hmac

import pytest
from django.conf import settings
from django.utils import timezone

from journeys.models import CrossDeviceLink, JourneySession, Visitor
from tests.journeys.helpers import row_counts, start, tables_containing

pytestmark = pytest.mark.django_db

CONSENT_REQUIRED = {"detail": "The visitor has not given cross-device consent.", "code": "consent_required"}


def identify(api, session_id, identifier, method="email"):
    return api.post(
        "/api/v1/identify", {"session_id": session_id, "identifier": identifier, "method": method}, format="json"
    )


def consent(api, visitor_id, **flags):
    return api.post("/api/v1/consent", {"visitor_id": visitor_id, **flags}, format="json")


def identifier_hash(normalized: str) -> str:
    """HMAC-SHA256 under HASH_KEY with the "identifier" purpose, as core/hashing.py documents."""
    return hmac.new(f"{settings.HASH_KEY}:identifier".encode(), normalized.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def two_devices(api):
    """Ann on her desktop (visitor v-desk, session s-desk), then on her phone (v-mob, s-mob)."""
    start(api, "s-desk", visitor_id="v-desk", device="desktop", source="google")
    start(api, "s-mob", visitor_id="v-mob", device="mobile", source="tiktok")
    return "s-desk", "s-mob"


def link_of(session_id):
    return JourneySession.objects.get(session_id=session_id).cross_device_link


# identify


def test_identify_without_cross_device_consent_is_refused_and_links_nothing(api, two_devices):
    consent(api, "v-desk", personalization=True)
    before = row_counts()

    response = identify(api, "s-desk", "ann@example.com")

    assert response.status_code == 403
    assert response.json() == CONSENT_REQUIRED
    assert row_counts() == before
    assert CrossDeviceLink.objects.count() == 0
    assert Visitor.objects.get(visitor_id="v-desk").user_key == ""
    assert link_of("s-desk") is None
    assert tables_containing("ann@example.com") == []


def test_two_devices_identified_by_one_email_share_a_unified_journey(api, two_devices):
    consent(api, "v-desk", cross_device=True)
    consent(api, "v-mob", cross_device=True)

    first = identify(api, "s-desk", "Ann@Example.com ")
    second = identify(api, "s-mob", "  ann@EXAMPLE.com")

    assert (first.status_code, second.status_code) == (200, 200)
    link = CrossDeviceLink.objects.get()
    assert first.json() == {
        "unified_journey_id": str(link.unified_journey_id),
        "sessions": ["s-desk"],
        "device_sequence": ["desktop"],
    }
    assert second.json() == {
        "unified_journey_id": str(link.unified_journey_id),
        "sessions": ["s-desk", "s-mob"],
        "device_sequence": ["desktop", "mobile"],
    }
    expected_hash = identifier_hash("ann@example.com")
    assert (link.identifier_hash, link.method, link.device_sequence) == (expected_hash, "email", ["desktop", "mobile"])
    assert link_of("s-desk") == link_of("s-mob") == link
    assert dict(Visitor.objects.values_list("visitor_id", "user_key")) == {
        "v-desk": expected_hash,
        "v-mob": expected_hash,
    }


def test_raw_identifier_is_stored_nowhere(api, two_devices):
    consent(api, "v-desk", cross_device=True)

    identify(api, "s-desk", "Ann.Secret@Example.com")

    assert tables_containing("ann.secret@example.com") == []
    assert tables_containing("Ann.Secret") == []


def test_identify_links_every_session_of_the_visitor(api):
    start(api, "s-1", visitor_id="v-1", device="mobile")
    start(api, "s-2", visitor_id="v-1", device="tablet")
    consent(api, "v-1", cross_device=True)

    response = identify(api, "s-2", "user-77", method="user_id")

    assert response.json()["sessions"] == ["s-1", "s-2"]
    assert response.json()["device_sequence"] == ["mobile", "tablet"]


def test_phone_numbers_are_linked_whatever_their_formatting(api, two_devices):
    consent(api, "v-desk", cross_device=True)
    consent(api, "v-mob", cross_device=True)

    first = identify(api, "s-desk", "+49 (151) 234-567", method="phone")
    second = identify(api, "s-mob", "+49151234567", method="phone")

    assert first.json()["unified_journey_id"] == second.json()["unified_journey_id"]
    assert CrossDeviceLink.objects.get().identifier_hash == identifier_hash("+49151234567")


def test_identify_with_another_identifier_leaves_no_stale_unified_journey(api, two_devices):
    consent(api, "v-mob", cross_device=True)
    identify(api, "s-mob", "old@example.com")

    response = identify(api, "s-mob", "new@example.com")

    assert response.json()["sessions"] == ["s-mob"]
    assert list(CrossDeviceLink.objects.values_list("identifier_hash", "device_sequence")) == [
        (identifier_hash("new@example.com"), ["mobile"])
    ]


def test_withdrawing_cross_device_consent_unlinks_the_visitor(api, two_devices):
    consent(api, "v-desk", cross_device=True)
    consent(api, "v-mob", cross_device=True)
    identify(api, "s-desk", "ann@example.com")
    identify(api, "s-mob", "ann@example.com")

    response = consent(api, "v-mob", cross_device=False)

    assert response.status_code == 200
    assert link_of("s-mob") is None
    assert Visitor.objects.get(visitor_id="v-mob").user_key == ""
    assert CrossDeviceLink.objects.get().device_sequence == ["desktop"]
    assert link_of("s-desk") == CrossDeviceLink.objects.get()
    assert identify(api, "s-mob", "ann@example.com").json() == CONSENT_REQUIRED


def test_withdrawing_the_last_linked_visitor_removes_the_unified_journey(api, two_devices):
    consent(api, "v-desk", cross_device=True)
    identify(api, "s-desk", "ann@example.com")

    consent(api, "v-desk", cross_device=False)

    assert CrossDeviceLink.objects.count() == 0
    assert link_of("s-desk") is None


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"session_id": "s-desk", "identifier": "a@b.c", "method": "fax"},
            {"method": ['"fax" is not a valid choice.']},
        ),
        ({"session_id": "s-desk", "method": "email"}, {"identifier": ["This field is required."]}),
        (
            {"session_id": "s-desk", "identifier": "", "method": "email"},
            {"identifier": ["This field may not be blank."]},
        ),
    ],
)
def test_bad_identify_is_refused_naming_the_field(api, two_devices, body, errors):
    consent(api, "v-desk", cross_device=True)
    before = row_counts()

    response = api.post("/api/v1/identify", body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert row_counts() == before


def test_identify_for_an_unknown_session_is_404(api, two_devices):
    response = identify(api, "s-missing", "ann@example.com")

    assert response.status_code == 404
    assert response.json() == {"detail": "No session 's-missing' for this site.", "code": "session_not_found"}
    assert CrossDeviceLink.objects.count() == 0


# consent


def test_consent_sets_both_flags_with_their_timestamps(api):
    before = timezone.now()

    response = consent(api, "v-9", personalization=True, cross_device=True)

    after = timezone.now()
    assert response.status_code == 200
    assert response.json() == {"visitor_id": "v-9", "personalization": True, "cross_device": True}
    visitor = Visitor.objects.get(visitor_id="v-9")
    assert (visitor.consent_personalization, visitor.consent_cross_device) == (True, True)
    assert before <= visitor.consent_personalization_at <= after
    assert before <= visitor.consent_cross_device_at <= after


def test_consent_with_one_flag_leaves_the_other_alone(api):
    consent(api, "v-9", personalization=True, cross_device=True)
    cross_device_at = Visitor.objects.get(visitor_id="v-9").consent_cross_device_at

    response = consent(api, "v-9", personalization=False)

    assert response.json() == {"visitor_id": "v-9", "personalization": False, "cross_device": True}
    visitor = Visitor.objects.get(visitor_id="v-9")
    assert (visitor.consent_personalization, visitor.consent_cross_device) == (False, True)
    assert visitor.consent_cross_device_at == cross_device_at


def test_repeating_a_consent_keeps_the_time_it_was_given(api):
    consent(api, "v-9", personalization=True)
    given_at = Visitor.objects.get(visitor_id="v-9").consent_personalization_at

    consent(api, "v-9", personalization=True)

    assert Visitor.objects.get(visitor_id="v-9").consent_personalization_at == given_at


@pytest.mark.parametrize("flags", [{}, {"personalization": None, "cross_device": None}])
def test_consent_without_any_flag_is_refused_and_creates_no_visitor(api, flags):
    before = row_counts()

    response = consent(api, "v-9", **flags)

    assert response.status_code == 400
    assert response.json() == {"personalization": ["Send personalization, cross_device or both."]}
    assert row_counts() == before


def test_consent_with_a_non_boolean_flag_is_refused_naming_it(api):
    response = consent(api, "v-9", cross_device="perhaps")

    assert response.status_code == 400
    assert response.json() == {"cross_device": ["Must be a valid boolean."]}
    assert Visitor.objects.count() == 0
