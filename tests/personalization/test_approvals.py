import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from personalization.models import ApprovalRequest, AuditLog, ContentVariant, RequestStatus, Slot, Status
from personalization.services.approvals import (
    NotAnApprover,
    SelfApprovalRefused,
    approvable_edit,
    approval_decide,
    approval_submit,
    checklist_all_ticked,
)
from tests.personalization.helpers import approved, staff


@pytest.fixture
def variant(site, marketer):
    slot = Slot.objects.create(site=site, key="hero", name="Hero")
    return ContentVariant.objects.create(
        site=site, slot=slot, key="hero-b", name="Hero B", payload={"headline": "Fast"}, created_by=marketer
    )


def test_marketer_cannot_approve_own_variant_and_nothing_changes(variant, marketer):
    request = approval_submit(obj=variant, requester=marketer)
    marketer.groups.add(Group.objects.get(name="Approvers"))  # even as an approver

    with pytest.raises(SelfApprovalRefused):
        approval_decide(request=request, decider=marketer, approve=True)

    request.refresh_from_db()
    variant.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    assert request.decider is None
    assert variant.status == Status.PENDING
    assert variant.published is None
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["submitted"]


def test_superuser_cannot_approve_own_request(variant, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-12345")
    request = approval_submit(obj=variant, requester=boss)

    with pytest.raises(SelfApprovalRefused):
        approval_decide(request=request, decider=boss, approve=True)
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.PENDING


def test_database_refuses_a_request_decided_by_its_requester(variant, marketer):
    request = approval_submit(obj=variant, requester=marketer)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalRequest.objects.filter(pk=request.pk).update(decider=marketer)


def test_non_approver_cannot_decide(variant, marketer, django_user_model):
    other = staff(django_user_model, "otto")
    request = approval_submit(obj=variant, requester=marketer)
    with pytest.raises(NotAnApprover):
        approval_decide(request=request, decider=other, approve=True)
    variant.refresh_from_db()
    assert variant.published is None


def test_approval_publishes_the_submitted_version(variant, marketer, approver):
    request = approval_submit(obj=variant, requester=marketer)

    approval_decide(
        request=request, decider=approver, approve=True, comment="ok", checklist=checklist_all_ticked(request)
    )

    variant.refresh_from_db()
    assert variant.status == Status.LIVE
    assert variant.published_version == 1
    assert variant.published["payload"] == {"headline": "Fast"}
    assert list(AuditLog.objects.order_by("id").values_list("action", "actor__username")) == [
        ("submitted", "mia"),
        ("approved", "ada"),
    ]


def test_edited_live_variant_keeps_serving_approved_version_until_edit_is_approved(variant, marketer, approver):
    approved(variant, (marketer, approver))

    approvable_edit(obj=variant, actor=marketer, changes={"payload": {"headline": "Faster"}})
    variant.refresh_from_db()
    assert (variant.version, variant.status, variant.published_version) == (2, Status.DRAFT, 1)
    assert variant.published["payload"] == {"headline": "Fast"}
    assert variant.serving is True

    request = approval_submit(obj=variant, requester=marketer)
    variant.refresh_from_db()
    assert variant.published["payload"] == {"headline": "Fast"}

    approval_decide(request=request, decider=approver, approve=True, checklist=checklist_all_ticked(request))
    variant.refresh_from_db()
    assert (variant.version, variant.status, variant.published_version) == (2, Status.LIVE, 2)
    assert variant.published["payload"] == {"headline": "Faster"}
    edit = AuditLog.objects.get(action="edited")
    assert edit.changes["diff"] == {"payload": {"from": {"headline": "Fast"}, "to": {"headline": "Faster"}}}


def test_rejection_returns_object_to_draft_without_publishing(variant, marketer, approver):
    request = approval_submit(obj=variant, requester=marketer)
    approval_decide(request=request, decider=approver, approve=False, comment="tone")
    variant.refresh_from_db()
    assert (variant.status, variant.published) == (Status.DRAFT, None)
    assert ApprovalRequest.objects.get(pk=request.pk).comment == "tone"


def test_stock_update_changes_no_version_and_is_audited(site, marketer, approver):
    from decimal import Decimal

    from personalization.models import Offer

    offer = Offer.objects.create(site=site, name="Kit", sku="K1", price=Decimal("10.00"), discount_percent=Decimal(10))
    approved(offer, (marketer, approver))

    approvable_edit(obj=offer, actor=marketer, changes={"stock_remaining": 3})

    offer.refresh_from_db()
    assert (offer.version, offer.status, offer.stock_remaining) == (1, Status.LIVE, 3)
    assert "stock_remaining" not in offer.published
    assert AuditLog.objects.get(action="updated").changes == {"stock_remaining": 3}
