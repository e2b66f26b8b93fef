"""Creating what needs approval, only through approvable_create; an offer's stock, only through offer_stock_set."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from personalization.models import (
    AuditLog,
    ContentVariant,
    Experiment,
    ExperimentArm,
    Offer,
    ScarcityRule,
    Slot,
    Status,
    TriggerType,
)
from personalization.services.approvals import NotANewDraft, approvable_create
from tests.personalization.helpers import offer_admin_form
from tests.personalization.scarcity_helpers import live_offer


@pytest.fixture
def slot(site):
    return Slot.objects.create(site=site, key="hero", name="Hero")


def _rows() -> dict:
    """Everything a creation may write."""
    return {
        "variants": list(ContentVariant.objects.order_by("id").values()),
        "offers": list(Offer.objects.order_by("id").values()),
        "experiments": list(Experiment.objects.order_by("id").values()),
        "arms": list(ExperimentArm.objects.order_by("id").values()),
        "rules": list(ScarcityRule.objects.order_by("id").values()),
        "audit": list(AuditLog.objects.order_by("id").values("id", "action", "object_id", "changes")),
    }


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_variant_is_created_as_version_1_draft_by_its_author_and_audited(site, slot, people):
    marketer, _ = people

    variant = approvable_create(
        obj=ContentVariant(site=site, slot=slot, key="hero-b", name="Hero B", payload={"headline": "Fast"}),
        actor=marketer,
    )

    stored = ContentVariant.objects.get()
    assert stored.pk == variant.pk
    assert (stored.version, stored.status, stored.published, stored.published_version, stored.created_by) == (
        1,
        Status.DRAFT,
        None,
        None,
        marketer,
    )
    entry = AuditLog.objects.get()
    assert (entry.action, entry.actor, entry.object_id) == ("created", marketer, variant.pk)
    assert entry.changes["version"] == 1
    assert entry.changes["snapshot"]["payload"] == {"headline": "Fast"}


def test_an_experiment_is_created_with_its_arms_in_one_audited_version(site, slot, people):
    marketer, _ = people
    control = ContentVariant.objects.create(site=site, slot=slot, key="hero-a", name="A", payload={"h": "a"})
    treatment = ContentVariant.objects.create(site=site, slot=slot, key="hero-b", name="B", payload={"h": "b"})
    arms = [
        {"variant": control.pk, "is_control": True, "weight": 0.5, "is_paused": False},
        {"variant": treatment.pk, "is_control": False, "weight": 0.5, "is_paused": False},
    ]

    experiment = approvable_create(
        obj=Experiment(site=site, key="hero-test", name="Hero test", slot=slot), actor=marketer, arms=arms
    )

    assert list(experiment.arms.values_list("variant__key", "is_control", "weight")) == [
        ("hero-a", True, 0.5),
        ("hero-b", False, 0.5),
    ]
    assert AuditLog.objects.get(object_id=experiment.pk).changes["snapshot"]["arms"] == arms


@pytest.mark.parametrize(
    ("make", "refusal"),
    [
        (
            lambda site, slot: ContentVariant(site=site, slot=slot, key="k", name="k", payload={"h": 1}, status="live"),
            "version 1 in draft",
        ),
        (
            lambda site, slot: ContentVariant(site=site, slot=slot, key="k", name="k", payload={"h": 1}, version=2),
            "version 1 in draft",
        ),
        (
            lambda site, slot: ContentVariant(
                site=site,
                slot=slot,
                key="k",
                name="k",
                payload={"h": 1},
                published={"payload": {}},
                published_version=1,
            ),
            "version 1 in draft",
        ),
        (
            lambda site, slot: Offer(site=site, name="Tee", sku="T1", price=Decimal("20.00"), stock_remaining=5),
            "stock is reported with offer_stock_set",
        ),
        (
            lambda site, slot: Offer(
                site=site, name="Tee", sku="T1", price=Decimal("20.00"), stock_updated_at=timezone.now()
            ),
            "stock is reported with offer_stock_set",
        ),
        (lambda site, slot: Slot(site=site, key="cta", name="CTA"), "not a new variant, offer, experiment"),
    ],
)
def test_a_creation_that_skips_the_approval_flow_or_the_stock_report_is_refused_and_saves_nothing(
    site, slot, people, make, refusal
):
    before = _rows()

    with pytest.raises(NotANewDraft, match=refusal):
        approvable_create(obj=make(site, slot), actor=people[0])

    assert _rows() == before
    assert Slot.objects.count() == 1


def test_an_object_already_saved_is_refused(site, slot, people):
    variant = ContentVariant.objects.create(site=site, slot=slot, key="k", name="k", payload={"h": 1})
    before = _rows()

    with pytest.raises(NotANewDraft):
        approvable_create(obj=variant, actor=people[0])

    assert _rows() == before


def test_arms_on_anything_but_an_experiment_are_refused(site, slot, people):
    before = _rows()

    with pytest.raises(NotANewDraft, match="Only an experiment has arms"):
        approvable_create(
            obj=ContentVariant(site=site, slot=slot, key="k", name="k", payload={"h": 1}),
            actor=people[0],
            arms=[{"variant": 1, "is_control": True, "weight": 1.0}],
        )

    assert _rows() == before


def test_an_invalid_object_is_refused_by_its_validation_and_saves_nothing(site, people):
    offer = live_offer(site, people)
    before = _rows()

    with pytest.raises(ValidationError) as invalid:
        approvable_create(
            obj=ScarcityRule(
                site=site,
                key="low-stock",
                name="Low stock",
                trigger_type=TriggerType.LOW_STOCK,
                offer=offer,
                message_template="Only 2 left!",
            ),
            actor=people[0],
        )

    assert "message_template" in invalid.value.message_dict
    assert _rows() == before


# --- the admin goes through the same services -----------------------------------------------------


def _new_offer(site) -> Offer:
    return Offer(site=site, name="Tee", sku="T1", price=Decimal("20.00"))


def test_an_offer_added_in_the_admin_with_stock_reports_it_confirmed_by_its_author(site, people):
    marketer, _ = people
    before = timezone.now()

    response = _client(marketer).post(
        reverse("admin:personalization_offer_add"), offer_admin_form(_new_offer(site), stock_remaining=7)
    )

    assert response.status_code == 302
    offer = Offer.objects.get()
    assert (offer.version, offer.status, offer.created_by, offer.stock_remaining, offer.stock_confirmed_by) == (
        1,
        Status.DRAFT,
        marketer,
        7,
        "mia",
    )
    assert before <= offer.stock_updated_at <= timezone.now()
    actions = list(AuditLog.objects.order_by("id").values_list("action", "changes__stock_remaining"))
    assert actions == [("created", None), ("updated", 7)]


def test_an_offer_added_in_the_admin_without_stock_has_no_stock_report(site, people):
    response = _client(people[0]).post(reverse("admin:personalization_offer_add"), offer_admin_form(_new_offer(site)))

    assert response.status_code == 302
    offer = Offer.objects.get()
    assert (offer.stock_remaining, offer.stock_updated_at, offer.stock_confirmed_by) == (None, None, "")
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["created"]


def test_a_stock_count_typed_in_the_admin_is_a_stock_report_and_no_new_version(site, people):
    marketer, _ = people
    offer = live_offer(site, people, stock=9, stock_at=timezone.now() - timedelta(hours=2))
    restock = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    form = offer_admin_form(
        offer,
        stock_remaining=4,
        restock_at_0=restock.strftime("%Y-%m-%d"),
        restock_at_1=restock.strftime("%H:%M:%S"),
    )
    confirmed_from = timezone.now()

    response = _client(marketer).post(reverse("admin:personalization_offer_change", args=[offer.pk]), form)

    assert response.status_code == 302
    offer.refresh_from_db()
    assert (offer.version, offer.stock_remaining, offer.restock_at, offer.stock_confirmed_by) == (1, 4, restock, "mia")
    assert confirmed_from <= offer.stock_updated_at <= timezone.now()
    last = AuditLog.objects.order_by("-id").first()
    assert (last.action, last.changes["stock_remaining"], last.changes["stock_confirmed_by"]) == ("updated", 4, "mia")


def test_an_offer_whose_sku_a_url_cannot_carry_is_refused_in_the_admin(site, people):
    before = Offer.objects.count()

    response = _client(people[0]).post(
        reverse("admin:personalization_offer_add"), offer_admin_form(_new_offer(site), sku="A/1")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["sku"] == [
        "Use 1 to 64 of the characters A-Z a-z 0-9 - _ . ~ (usable in a URL as they are), not starting with '.'."
    ]
    assert Offer.objects.count() == before
