"""A visitor's export and erasure: GET/DELETE /api/v1/visitors/{visitor_id} (staff)."""

import json
import uuid

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client

from analytics.models import SessionDaily
from analytics.rollups import rollups_update
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
from tests.analytics.rollup_helpers import rollup_rows
from tests.journeys.helpers import event, move, post_events, row_counts, start, tables_containing

pytestmark = pytest.mark.django_db


def conversion(api, session_id, event_id, value="10.00"):
    body = {"event_id": event_id, "type": "purchase", "value": value, "currency": "EUR"}
    return api.post(f"/api/v1/sessions/{session_id}/conversions", body, format="json")


def give_history(api, visitor_id, prefix, email):
    """Two sessions on two devices with everything a visitor can leave behind:
    transitions, touchpoints, a conversion, persona changes, consent, a unified journey,
    a quarantined event and conflict logs of a session start, an event and a conversion."""
    desk, mob = f"{prefix}-desk", f"{prefix}-mob"
    start(api, desk, visitor_id=visitor_id, device="desktop", source="google")
    start(api, mob, visitor_id=visitor_id, device="mobile", source="tiktok")
    start(api, mob, visitor_id=visitor_id, device="tablet", source="tiktok")  # conflicting repeat
    move(api, desk, "decision", trigger_event="compare")
    touch = event(desk, page_url=f"https://shop.example/{prefix}")
    post_events(api, [touch, event(mob), event(mob, scroll_depth=9)])
    post_events(api, [{**touch, "page_url": "https://shop.example/changed"}])  # conflicting repeat
    conversion_id = str(uuid.uuid4())
    conversion(api, desk, conversion_id)
    conversion(api, desk, conversion_id, value="99.00")  # conflicting repeat
    api.post("/api/v1/consent", {"visitor_id": visitor_id, "cross_device": True}, format="json")
    api.post("/api/v1/identify", {"session_id": mob, "identifier": email, "method": "email"}, format="json")
    return touch["event_id"], conversion_id


@pytest.fixture
def ann(api):
    return give_history(api, "v-ann", "ann", "ann@example.com")


@pytest.fixture
def bob(api):
    return give_history(api, "v-bob", "bob", "bob@example.com")


def test_export_returns_sessions_touchpoints_conversions_and_logs(privacy_api, ann):
    touch_id, conversion_id = ann

    response = privacy_api.get("/api/v1/visitors/v-ann")

    assert response.status_code == 200
    body = response.json()
    assert body["visitor_id"] == "v-ann"
    assert (body["consent"]["personalization"], body["consent"]["cross_device"]) == (False, True)
    assert body["persona"] == {"type": "StudentHustler", "confidence": 0.6}
    assert [(c["from"], c["to"]) for c in body["persona_history"]] == [
        ("", "Researcher"),
        ("Researcher", "StudentHustler"),
    ]
    assert body["has_cross_device_identity"] is True
    sessions = {s["session_id"]: s for s in body["sessions"]}
    assert list(sessions) == ["ann-desk", "ann-mob"]
    desk = sessions["ann-desk"]
    assert [(t["from"], t["to"]) for t in desk["transitions"]] == [
        ("", "awareness"),
        ("awareness", "decision"),
        ("decision", "conversion"),
    ]
    assert [(t["event_id"], t["sequence"], t["page_url"]) for t in desk["touchpoints"]] == [
        (touch_id, 1, "https://shop.example/ann")
    ]
    assert [(c["event_id"], c["type"], c["value"], c["currency"]) for c in desk["conversions"]] == [
        (conversion_id, "purchase", "10.00", "EUR")
    ]
    assert len(sessions["ann-mob"]["touchpoints"]) == 1
    assert sessions["ann-mob"]["unified_journey_id"] == desk["unified_journey_id"] is not None
    assert [q["reason"] for q in body["quarantined_events"]] == [{"scroll_depth": ["Expected `float` <= 1.0"]}]
    assert sorted(c["kind"] for c in body["idempotency_conflicts"]) == ["conversion", "event", "session"]


def test_erase_removes_everything_held_about_the_visitor_and_nothing_else(privacy_api, ann, bob):
    bob_before = privacy_api.get("/api/v1/visitors/v-bob").json()
    bob_rows = {
        "Visitor": 1,
        "JourneySession": 2,
        "Touchpoint": 2,
        "StageTransition": 4,
        "ConversionEvent": 1,
        "PersonaChange": 2,
        "CrossDeviceLink": 1,
        "QuarantinedEvent": 1,
        "IdempotencyConflict": 3,
    }
    assert row_counts() == {model: 2 * count for model, count in bob_rows.items()}

    response = privacy_api.delete("/api/v1/visitors/v-ann")

    assert response.status_code == 204
    after = privacy_api.get("/api/v1/visitors/v-ann")
    assert after.status_code == 404
    assert after.json() == {"detail": "No visitor 'v-ann' for this site.", "code": "visitor_not_found"}
    assert row_counts() == bob_rows
    assert Visitor.objects.filter(visitor_id="v-ann").count() == 0
    assert JourneySession.objects.filter(session_id__startswith="ann-").count() == 0
    for model in (Touchpoint, StageTransition, ConversionEvent):
        assert model.objects.filter(session__session_id__startswith="ann-").count() == 0
    assert PersonaChange.objects.filter(visitor__visitor_id="v-ann").count() == 0
    assert tables_containing("ann-desk") == []
    assert tables_containing("ann-mob") == []
    assert tables_containing("v-ann") == []
    assert CrossDeviceLink.objects.filter(sessions=None).count() == 0
    assert QuarantinedEvent.objects.filter(raw_payload__session_id__startswith="ann-").count() == 0
    assert IdempotencyConflict.objects.filter(received_payload__session_id__startswith="ann-").count() == 0
    assert privacy_api.get("/api/v1/visitors/v-bob").json() == bob_before


def test_erase_keeps_a_unified_journey_another_visitor_is_in(api, privacy_api):
    for visitor_id, session_id, device in (("v-ann", "ann-desk", "desktop"), ("v-ann-2", "ann-phone", "mobile")):
        start(api, session_id, visitor_id=visitor_id, device=device)
        api.post("/api/v1/consent", {"visitor_id": visitor_id, "cross_device": True}, format="json")
        api.post(
            "/api/v1/identify",
            {"session_id": session_id, "identifier": "ann@example.com", "method": "email"},
            format="json",
        )
    link = CrossDeviceLink.objects.get()
    assert link.device_sequence == ["desktop", "mobile"]

    privacy_api.delete("/api/v1/visitors/v-ann")

    link.refresh_from_db()
    assert link.device_sequence == ["mobile"]
    assert list(link.sessions.values_list("session_id", flat=True)) == ["ann-phone"]


def test_erase_of_an_unknown_visitor_is_404_and_changes_nothing(privacy_api, ann):
    before = row_counts()

    response = privacy_api.delete("/api/v1/visitors/v-nobody")

    assert response.status_code == 404
    assert response.json() == {"detail": "No visitor 'v-nobody' for this site.", "code": "visitor_not_found"}
    assert row_counts() == before


def test_staff_cannot_erase_a_visitor_through_another_sites_key(privacy_client_for, other_site, ann):
    before = row_counts()

    response = privacy_client_for(other_site).delete("/api/v1/visitors/v-ann")

    assert response.status_code == 404
    assert response.json() == {"detail": "No visitor 'v-ann' for this site.", "code": "visitor_not_found"}
    assert row_counts() == before


def test_visitor_endpoint_needs_the_site_named(privacy_client_for, ann):
    before = row_counts()

    response = privacy_client_for(None).delete("/api/v1/visitors/v-ann")

    assert response.status_code == 400
    assert response.json() == {"X-Site-Key": ["Name the site with the X-Site-Key header."]}
    assert row_counts() == before


def test_rollups_no_longer_count_an_erased_visitor_after_the_next_run(privacy_api, ann, bob):
    # Given rollups that count both visitors (two sessions each)
    rollups_update()
    assert SessionDaily.objects.aggregate(total=Sum("sessions"))["total"] == 4

    # When ann is erased and the rollups run again
    assert privacy_api.delete("/api/v1/visitors/v-ann").status_code == 204
    rollups_update()

    # Then they count bob's sessions only, as a recompute from raw does
    assert SessionDaily.objects.aggregate(total=Sum("sessions"))["total"] == 2
    incremental = rollup_rows()
    call_command("rollups_recompute")
    assert rollup_rows() == incremental


# --- the admin's privacy actions ----------------------------------------------------------

VISITORS_ADMIN = "/admin/journeys/visitor/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def action(client, name: str, visitors, **extra):
    return client.post(
        VISITORS_ADMIN, {"action": name, "_selected_action": [visitor.pk for visitor in visitors], **extra}
    )


def test_privacy_officer_exports_the_selected_visitors_from_the_admin(privacy_officer, privacy_api, ann, bob):
    visitors = Visitor.objects.order_by("visitor_id")

    response = action(logged_in(privacy_officer), "export_visitors", visitors)

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="visitors-export.json"'
    exported = json.loads(response.content)["visitors"]
    assert [v["visitor_id"] for v in exported] == ["v-ann", "v-bob"]
    assert exported[0] == json.loads(json.dumps(privacy_api.get("/api/v1/visitors/v-ann").json()))


def test_privacy_officer_erases_from_the_admin_after_confirming(privacy_officer, privacy_api, ann, bob):
    client = logged_in(privacy_officer)
    ann_visitor = Visitor.objects.get(visitor_id="v-ann")
    before = row_counts()

    asked = action(client, "erase_visitors", [ann_visitor])

    assert asked.status_code == 200
    assert b"Erasing cannot be undone" in asked.content
    assert b"v-ann" in asked.content
    assert row_counts() == before

    done = action(client, "erase_visitors", [ann_visitor], confirmed="yes")

    assert done.status_code == 302
    assert privacy_api.get("/api/v1/visitors/v-ann").status_code == 404
    assert privacy_api.get("/api/v1/visitors/v-bob").status_code == 200
    assert tables_containing("v-ann") == []


@pytest.mark.parametrize("roles", [["Marketers"], ["Approvers"], ["Analysts"]])
def test_other_staff_get_no_privacy_action_in_the_admin(django_user_model, ann, roles):
    user = django_user_model.objects.create_user("sam", password="pw-sam-12345", is_staff=True)
    user.groups.set(Group.objects.filter(name__in=roles))
    client = logged_in(user)
    before = row_counts()

    listing = client.get(VISITORS_ADMIN)
    export = action(client, "export_visitors", Visitor.objects.all())
    erase = action(client, "erase_visitors", Visitor.objects.all(), confirmed="yes")

    assert listing.status_code == 200
    assert b"export_visitors" not in listing.content
    assert b"erase_visitors" not in listing.content
    # no such action for them: the list again, no file, no confirmation page
    assert (export.status_code, erase.status_code) == (200, 200)
    assert export.get("Content-Disposition") is None
    assert b"Erasing cannot be undone" not in erase.content
    assert row_counts() == before


def test_visitors_are_never_deleted_by_the_plain_admin_delete(django_user_model, ann):
    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    visitor = Visitor.objects.get(visitor_id="v-ann")
    client = logged_in(root)
    before = row_counts()

    listing = client.get(VISITORS_ADMIN)
    delete = client.post(f"{VISITORS_ADMIN}{visitor.pk}/delete/", {"post": "yes"})

    assert b"delete_selected" not in listing.content
    assert b"erase_visitors" in listing.content
    assert delete.status_code == 403
    assert row_counts() == before
