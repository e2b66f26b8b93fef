"""The shop backend's stock feed: secret key only, each call confirms the stock as of now."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from journeys.services.sites import site_secret_rotate
from personalization.models import AuditLog, Offer, TriggerType
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from tests.personalization.scarcity_helpers import cues, live_offer, make_rule, visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret(site) -> str:
    return site_secret_rotate(site=site)


def backend(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def offer_state(sku: str = "A1") -> tuple:
    offer = Offer.objects.get(sku=sku)
    return offer.stock_remaining, offer.stock_updated_at, offer.stock_confirmed_by, offer.restock_at, offer.version


def test_stock_put_with_the_secret_key_confirms_the_stock_as_of_now(site, people, secret):
    live_offer(site, people, stock=9, stock_at=timezone.now() - timedelta(hours=2))
    before = timezone.now()

    response = backend(secret).put("/api/v1/offers/A1/stock", {"stock_remaining": 4}, format="json")

    assert response.status_code == 200
    offer = Offer.objects.get(sku="A1")
    assert before <= offer.stock_updated_at <= timezone.now()
    assert response.json() == {
        "sku": "A1",
        "stock_remaining": 4,
        "restock_at": None,
        "stock_updated_at": offer.stock_updated_at.isoformat(),
        "stock_confirmed_by": f"stock feed ({site.secret_key_hint})",
    }
    assert (offer.stock_remaining, offer.version) == (4, 1)  # live data: no new version, no approval
    reports = AuditLog.objects.filter(action="updated").order_by("id")
    assert list(reports.values_list("actor__username", "changes__stock_remaining")) == [("mia", 9), (None, 4)]


def test_restock_date_is_set_and_cleared_only_when_sent(site, people, secret):
    live_offer(site, people, stock=9)
    restock = (timezone.now() + timedelta(days=3)).replace(microsecond=0)

    backend(secret).put("/api/v1/offers/A1/stock", {"stock_remaining": 9, "restock_at": restock.isoformat()}, "json")
    kept = backend(secret).put("/api/v1/offers/A1/stock", {"stock_remaining": 8}, format="json")
    assert kept.json()["restock_at"] == restock.isoformat()
    cleared = backend(secret).put("/api/v1/offers/A1/stock", {"stock_remaining": 8, "restock_at": None}, "json")

    assert cleared.json()["restock_at"] is None
    assert Offer.objects.get(sku="A1").restock_at is None


def test_unchanged_confirmation_moves_only_the_confirmation_time_and_writes_no_audit(site, people, secret):
    live_offer(site, people, stock=5, stock_at=timezone.now() - timedelta(minutes=10))
    audits = AuditLog.objects.count()

    response = backend(secret).put("/api/v1/offers/A1/stock", {"stock_remaining": 5}, format="json")

    assert response.status_code == 200
    stock, confirmed_at, confirmed_by, _, version = offer_state()
    assert (stock, confirmed_by, version) == (5, f"stock feed ({site.secret_key_hint})", 1)
    assert timezone.now() - confirmed_at < timedelta(seconds=5)
    assert AuditLog.objects.count() == audits


def test_bulk_feed_confirms_every_sku_at_the_same_moment(site, people, secret):
    live_offer(site, people, sku="A1", stock=5)
    live_offer(site, people, sku="B2", name="Case", stock=50)

    response = backend(secret).put(
        "/api/v1/offers/stock",
        {"offers": [{"sku": "B2", "stock_remaining": 49}, {"sku": "A1", "stock_remaining": 3}]},
        format="json",
    )

    assert response.status_code == 200
    assert [(item["sku"], item["stock_remaining"]) for item in response.json()["offers"]] == [("B2", 49), ("A1", 3)]
    assert len({item["stock_updated_at"] for item in response.json()["offers"]}) == 1
    assert offer_state("A1")[0] == 3 and offer_state("B2")[0] == 49


def test_bulk_feed_with_an_unknown_sku_changes_nothing(site, people, secret):
    live_offer(site, people, sku="A1", stock=5)
    before = offer_state("A1")

    response = backend(secret).put(
        "/api/v1/offers/stock",
        {"offers": [{"sku": "A1", "stock_remaining": 1}, {"sku": "ZZ", "stock_remaining": 2}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"offers": ["No offer with SKU 'ZZ' on this site."]}
    assert offer_state("A1") == before


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"offers": []}, {"offers": ["Ensure this field has at least 1 elements."]}),
        (
            {"offers": [{"sku": "A1", "stock_remaining": 1}, {"sku": "A1", "stock_remaining": 2}]},
            {"offers": ["SKU listed more than once: A1."]},
        ),
        (
            {"offers": [{"sku": "A1", "stock_remaining": -1}]},
            {"offers": {"0": {"stock_remaining": ["Ensure this value is greater than or equal to 0."]}}},
        ),
        ({"offers": [{"sku": "A1", "stock": 1}]}, {"offers": {"0": {"stock": ["Unknown field."]}}}),
    ],
)
def test_bad_bulk_feeds_are_400_naming_the_field_and_change_nothing(site, people, secret, body, errors):
    live_offer(site, people, sku="A1", stock=5)
    before = offer_state("A1")

    response = backend(secret).put("/api/v1/offers/stock", body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert offer_state("A1") == before


def test_single_put_for_an_unknown_sku_is_404(site, secret):
    response = backend(secret).put("/api/v1/offers/NOPE/stock", {"stock_remaining": 1}, format="json")

    assert (response.status_code, response.json()["code"]) == (404, "offer_not_found")


@pytest.mark.parametrize(
    "credentials",
    [
        lambda site: {"HTTP_X_SITE_KEY": site.public_key},
        lambda site: {"HTTP_AUTHORIZATION": f"Bearer {site.public_key}"},
    ],
    ids=["public-key-header", "public-key-as-bearer"],
)
def test_the_public_key_is_refused_with_403_and_changes_nothing(site, people, secret, credentials):
    live_offer(site, people, stock=5)
    before = offer_state()
    client = APIClient()
    client.credentials(**credentials(site))

    single = client.put("/api/v1/offers/A1/stock", {"stock_remaining": 0}, format="json")
    bulk = client.put("/api/v1/offers/stock", {"offers": [{"sku": "A1", "stock_remaining": 0}]}, format="json")

    for response in (single, bulk):
        assert response.status_code == 403
        assert response.json() == {
            "detail": "This endpoint takes the site's secret key (Authorization: Bearer sk_...), never its public key.",
            "code": "secret_key_required",
        }
    assert offer_state() == before


def test_no_key_is_401_and_a_rotated_key_stops_working(site, people, secret):
    live_offer(site, people, stock=5)
    before = offer_state()

    anonymous = APIClient().put("/api/v1/offers/A1/stock", {"stock_remaining": 0}, format="json")
    new_secret = site_secret_rotate(site=site)
    old = backend(secret).put("/api/v1/offers/A1/stock", {"stock_remaining": 0}, format="json")

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    assert (old.status_code, old.json()["code"]) == (401, "invalid_secret_key")
    assert offer_state() == before
    assert backend(new_secret).put("/api/v1/offers/A1/stock", {"stock_remaining": 0}, format="json").status_code == 200


def test_a_secret_key_reaches_only_its_own_sites_offers(site, other_site, people, secret):
    live_offer(site, people, stock=5)
    other_secret = site_secret_rotate(site=other_site)
    before = offer_state()

    response = backend(other_secret).put("/api/v1/offers/A1/stock", {"stock_remaining": 0}, format="json")

    assert response.status_code == 404
    assert offer_state() == before


def test_secret_key_is_stored_only_as_a_hash(site, secret):
    site.refresh_from_db()

    assert secret.startswith("sk_") and len(secret) > 40
    assert secret not in (site.secret_key_hash, site.secret_key_hint)
    assert site.secret_key_hint == secret[:7] + "…"


def test_confirmations_keep_a_low_stock_cue_fresh(site, api, people, secret, django_capture_on_commit_callbacks):
    """The rule shows stock at most 5 minutes old: without a confirmation the cue stops; each
    confirmation (same stock) makes it true again as of then."""
    start = timezone.now()
    offer = live_offer(site, people, stock=3, stock_at=start)
    make_rule(site, offer, TriggerType.LOW_STOCK, people, staleness_seconds=300)
    visit(api, "s-viewer")
    scarcity_evidence_refresh(now=start)
    assert [cue["message"] for cue in cues("s-viewer", now=start + timedelta(minutes=4))] == ["Only 3 left"]
    assert cues("s-viewer", now=start + timedelta(minutes=6)) == []  # stale: no confirmation since

    with django_capture_on_commit_callbacks(execute=True):
        response = backend(secret).put("/api/v1/offers/A1/stock", {"stock_remaining": 3}, format="json")

    assert response.status_code == 200
    confirmed = Offer.objects.get(sku="A1").stock_updated_at
    shown = cues("s-viewer", now=confirmed + timedelta(minutes=4))
    assert [cue["message"] for cue in shown] == ["Only 3 left"]
    assert shown[0]["evidence"]["measured_at"] == confirmed.isoformat()


def test_a_purchase_naming_the_sku_does_not_change_stock(site, api, people):
    live_offer(site, people, stock=3)
    visit(api, "s-buyer")
    before = offer_state()

    response = api.post(
        "/api/v1/sessions/s-buyer/conversions",
        {"event_id": str(uuid.uuid4()), "type": "purchase", "value": "50.00", "product": {"sku": "A1"}},
        format="json",
    )

    assert response.status_code == 201
    assert offer_state() == before


def test_admin_shows_when_and_by_whom_stock_was_last_confirmed(site, people, secret, admin_user):
    live_offer(site, people, stock=7)
    backend(secret).put("/api/v1/offers/A1/stock", {"stock_remaining": 6}, format="json")
    client = Client()
    client.force_login(admin_user)

    listing = client.get(reverse("admin:personalization_offer_changelist"))
    page = client.get(reverse("admin:personalization_offer_change", args=[Offer.objects.get(sku="A1").pk]))

    hint = f"stock feed ({site.secret_key_hint})"
    assert listing.status_code == page.status_code == 200
    assert "Stock last confirmed" in listing.content.decode() and hint in listing.content.decode()
    assert "Stock last confirmed" in page.content.decode() and hint in page.content.decode()
