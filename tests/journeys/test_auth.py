"""Who may call what: site keys on browser endpoints, staff auth on staff endpoints; health and schema."""

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from journeys.models import JourneySession, Visitor
from tests.conftest import token_client_for
from tests.journeys.helpers import event, move, post_events, row_counts, start

pytestmark = pytest.mark.django_db

SESSION_BODY = {"session_id": "s-1", "visitor_id": "v-1", "device": {"type": "mobile"}}


def test_missing_site_key_is_401_and_writes_nothing(site):
    before = row_counts()

    response = APIClient().post("/api/v1/sessions", SESSION_BODY, format="json")

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Send the site's public key in the X-Site-Key header.",
        "code": "not_authenticated",
    }
    assert response["WWW-Authenticate"] == "X-Site-Key"
    assert row_counts() == before


def test_wrong_site_key_is_401_and_writes_nothing(site):
    client = APIClient()
    client.credentials(HTTP_X_SITE_KEY="pk_not-a-real-key")
    before = row_counts()

    response = client.post("/api/v1/sessions", SESSION_BODY, format="json")

    assert response.status_code == 401
    assert response.json() == {"detail": "Unknown or inactive site key.", "code": "invalid_site_key"}
    assert row_counts() == before


def test_key_of_an_inactive_site_is_401(site, client_for):
    site.is_active = False
    site.save()
    before = row_counts()

    response = client_for(site).post("/api/v1/sessions", SESSION_BODY, format="json")

    assert response.status_code == 401
    assert response.json() == {"detail": "Unknown or inactive site key.", "code": "invalid_site_key"}
    assert row_counts() == before


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/identify", "/api/v1/consent"])
def test_every_browser_endpoint_needs_the_site_key(site, path):
    before = row_counts()

    response = APIClient().post(path, {"events": [], "visitor_id": "v-1", "personalization": True}, format="json")

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Send the site's public key in the X-Site-Key header.",
        "code": "not_authenticated",
    }
    assert row_counts() == before


def test_key_of_another_site_cannot_touch_this_sites_session(api, other_site, client_for):
    start(api, "s-1")
    intruder = client_for(other_site)
    before = row_counts()
    session_before = JourneySession.objects.values().get(session_id="s-1")

    stage = move(intruder, "s-1", "decision")
    conversion = intruder.post(
        "/api/v1/sessions/s-1/conversions",
        {"event_id": "6f1c2b1e-1111-4222-8333-444455556666", "type": "purchase"},
        format="json",
    )
    identify = intruder.post(
        "/api/v1/identify", {"session_id": "s-1", "identifier": "a@b.c", "method": "email"}, format="json"
    )
    events = post_events(intruder, [event("s-1")])

    not_found = {"detail": "No session 's-1' for this site.", "code": "session_not_found"}
    assert (stage.status_code, stage.json()) == (404, not_found)
    assert (conversion.status_code, conversion.json()) == (404, not_found)
    assert (identify.status_code, identify.json()) == (404, not_found)
    assert events.json()["rejected"][0]["errors"] == {"session_id": ["Unknown session for this site."]}
    assert JourneySession.objects.values().get(session_id="s-1") == session_before
    after = row_counts()
    assert after == {**before, "QuarantinedEvent": before["QuarantinedEvent"] + 1}


def test_same_session_id_on_another_site_is_another_session(api, other_site, client_for):
    start(api, "s-1")

    response = start(client_for(other_site), "s-1")

    assert response.status_code == 201
    assert sorted(JourneySession.objects.values_list("site__domain", flat=True)) == ["other.example", "shop.example"]


def test_public_site_key_on_a_staff_endpoint_is_403(api):
    start(api, "s-1", visitor_id="v-1")

    response = api.get("/api/v1/visitors/v-1")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "A public site key cannot read staff endpoints; use a staff token.",
        "code": "staff_only",
    }


def test_public_site_key_cannot_erase_a_visitor(api):
    start(api, "s-1", visitor_id="v-1")
    before = row_counts()

    response = api.delete("/api/v1/visitors/v-1")

    assert response.status_code == 403
    assert row_counts() == before


def test_staff_endpoint_without_auth_is_401(site):
    response = APIClient().get("/api/v1/visitors/v-1")

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Staff authentication required (Authorization: Token ...).",
        "code": "not_authenticated",
    }


def test_staff_endpoint_with_a_non_staff_token_is_403(api, site, django_user_model):
    start(api, "s-1", visitor_id="v-1")
    user = django_user_model.objects.create_user("clerk", password="pw-clerk-123")
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}", HTTP_X_SITE_KEY=site.public_key
    )
    before = row_counts()

    read = client.get("/api/v1/visitors/v-1")
    erase = client.delete("/api/v1/visitors/v-1")

    assert (read.status_code, erase.status_code) == (403, 403)
    assert read.json() == {"detail": "Staff access only.", "code": "staff_only"}
    assert row_counts() == before


def test_staff_endpoint_with_a_bad_token_is_401(site):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token", HTTP_X_SITE_KEY=site.public_key)

    response = client.get("/api/v1/visitors/v-1")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}


def test_privacy_officer_session_login_can_read_the_export(api, site, privacy_officer):
    start(api, "s-1", visitor_id="v-1")
    client = APIClient()
    client.force_login(privacy_officer)
    client.credentials(HTTP_X_SITE_KEY=site.public_key)

    response = client.get("/api/v1/visitors/v-1")

    assert response.status_code == 200
    assert [s["session_id"] for s in response.json()["sessions"]] == ["s-1"]


EXPORT_REFUSED = {
    "detail": "Exporting a visitor's data needs the permission journeys.export_visitor (the Privacy officers "
    "role); this account does not have it.",
    "code": "permission_required",
    "permission": "journeys.export_visitor",
}
ERASE_REFUSED = {
    "detail": "Erasing a visitor's data needs the permission journeys.erase_visitor (the Privacy officers "
    "role); this account does not have it.",
    "code": "permission_required",
    "permission": "journeys.erase_visitor",
}


@pytest.mark.parametrize("roles", [[], ["Marketers"], ["Approvers"], ["Analysts"], ["Marketers", "Approvers"]])
def test_staff_without_the_privacy_role_can_neither_export_nor_erase(api, site, django_user_model, roles):
    # given a visitor, and a staff account in the other roles (or none)
    start(api, "s-1", visitor_id="v-1")
    user = django_user_model.objects.create_user("sam", password="pw-sam-12345", is_staff=True)
    user.groups.set(Group.objects.filter(name__in=roles))
    client = token_client_for(user)(site)
    before = row_counts()

    # when it asks for the visitor's data, and to erase it
    read = client.get("/api/v1/visitors/v-1")
    erase = client.delete("/api/v1/visitors/v-1")

    # then both are refused naming the permission, and nothing changed
    assert (read.status_code, read.json()) == (403, EXPORT_REFUSED)
    assert (erase.status_code, erase.json()) == (403, ERASE_REFUSED)
    assert row_counts() == before
    assert Visitor.objects.filter(visitor_id="v-1").count() == 1


def test_each_privacy_right_is_checked_on_its_own(api, site, django_user_model):
    start(api, "s-1", visitor_id="v-1")
    exporter = django_user_model.objects.create_user("exa", password="pw-exa-12345", is_staff=True)
    exporter.user_permissions.add(Permission.objects.get(codename="export_visitor"))
    client = token_client_for(exporter)(site)

    read = client.get("/api/v1/visitors/v-1")
    erase = client.delete("/api/v1/visitors/v-1")

    assert read.status_code == 200
    assert (erase.status_code, erase.json()) == (403, ERASE_REFUSED)
    assert Visitor.objects.filter(visitor_id="v-1").count() == 1


def test_superuser_and_privacy_officer_may_export_and_erase(api, site, django_user_model, privacy_client_for):
    start(api, "s-1", visitor_id="v-1")
    start(api, "s-2", visitor_id="v-2")
    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")

    assert token_client_for(root)(site).get("/api/v1/visitors/v-1").status_code == 200
    assert token_client_for(root)(site).delete("/api/v1/visitors/v-1").status_code == 204
    assert privacy_client_for(site).get("/api/v1/visitors/v-2").status_code == 200
    assert privacy_client_for(site).delete("/api/v1/visitors/v-2").status_code == 204
    assert Visitor.objects.count() == 0


def test_only_the_privacy_officers_role_holds_the_privacy_rights():
    rights = Permission.objects.filter(
        content_type__app_label="journeys", codename__in=["export_visitor", "erase_visitor"]
    )
    assert rights.count() == 2
    for right in rights:
        assert list(right.group_set.values_list("name", flat=True)) == ["Privacy officers"]


def test_healthz_is_200():
    response = APIClient().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_redis_ok(db):
    response = APIClient().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "redis": "ok", "down": []}


def test_openapi_schema_is_served_and_lists_the_journey_endpoints(db):
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/sessions",
        "/api/v1/sessions/{session_id}/stage",
        "/api/v1/sessions/{session_id}/conversions",
        "/api/v1/events",
        "/api/v1/identify",
        "/api/v1/consent",
        "/api/v1/visitors/{visitor_id}",
    ):
        assert path in paths


def test_unknown_url_is_404_json(db):
    response = APIClient().get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
