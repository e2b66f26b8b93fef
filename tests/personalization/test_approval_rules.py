"""What a decision needs, refused by the services for any caller: each checklist item to approve, a reason to reject."""

from __future__ import annotations

import pytest

from personalization.models import (
    ApprovalRequest,
    AuditLog,
    ContentVariant,
    OptimizationProposal,
    RequestStatus,
    Slot,
    Status,
)
from personalization.services.approvals import (
    ChecklistIncomplete,
    CommentRequired,
    approval_decide,
    approval_submit,
    checklist_all_ticked,
)
from personalization.services.optimizer import experiments_optimize, proposal_decide
from tests.personalization.optimizer_helpers import add_traffic, live_experiment, state

VARIANT_CHECKLIST = ["Brand and tone are right", "Claims in the copy are true", "Links work"]


@pytest.fixture
def pending(site, people):
    """A variant's version 1, submitted by the marketer."""
    slot = Slot.objects.create(site=site, key="hero", name="Hero")
    variant = ContentVariant.objects.create(site=site, slot=slot, key="hero-b", name="Hero B", payload={"h": "Fast"})
    return approval_submit(obj=variant, requester=people[0])


def _state() -> dict:
    """Everything a decision may write."""
    return {
        "requests": list(ApprovalRequest.objects.order_by("id").values()),
        "variants": list(ContentVariant.objects.order_by("id").values()),
        "audit": list(AuditLog.objects.order_by("id").values("id", "action", "object_id", "changes")),
    }


@pytest.mark.parametrize(
    ("checklist", "missing"),
    [
        (None, VARIANT_CHECKLIST),
        ({}, VARIANT_CHECKLIST),
        ({"Brand and tone are right": True, "Claims in the copy are true": True}, ["Links work"]),
        (dict.fromkeys(VARIANT_CHECKLIST, True) | {"Links work": False}, ["Links work"]),
        ({"Something else": True}, VARIANT_CHECKLIST),
    ],
)
def test_approving_without_every_checklist_item_is_refused_naming_them_and_changes_nothing(
    pending, people, checklist, missing
):
    before = _state()

    with pytest.raises(ChecklistIncomplete) as refused:
        approval_decide(request=pending, decider=people[1], approve=True, comment="fine", checklist=checklist)

    assert refused.value.missing == missing
    assert str(refused.value) == f"Tick every checklist item before approving. Not ticked: {'; '.join(missing)}."
    assert _state() == before
    assert ContentVariant.objects.get().status == Status.PENDING


@pytest.mark.parametrize("comment", ["", "   \n"])
def test_rejecting_without_a_comment_is_refused_and_changes_nothing(pending, people, comment):
    before = _state()

    with pytest.raises(CommentRequired, match="Say why it is rejected, so the requester can fix it."):
        approval_decide(request=pending, decider=people[1], approve=False, comment=comment)

    assert _state() == before


def test_with_every_item_ticked_the_approval_goes_through_and_records_the_checklist(pending, people):
    approval_decide(
        request=pending, decider=people[1], approve=True, checklist=checklist_all_ticked(pending), comment=""
    )

    request = ApprovalRequest.objects.get()
    assert (request.status, request.checklist) == (RequestStatus.APPROVED, dict.fromkeys(VARIANT_CHECKLIST, True))
    assert ContentVariant.objects.get().status == Status.LIVE


def test_a_rejection_needs_no_checklist(pending, people):
    approval_decide(request=pending, decider=people[1], approve=False, comment="tone is off")

    assert ApprovalRequest.objects.get().status == RequestStatus.REJECTED
    assert ContentVariant.objects.get().status == Status.DRAFT


def test_checklist_all_ticked_is_the_request_templates_checklist(pending):
    assert checklist_all_ticked(pending) == dict.fromkeys(VARIANT_CHECKLIST, True)


# --- optimizer proposals, decided directly or through their approval request ----------


@pytest.fixture
def proposal(site) -> OptimizationProposal:
    """A pending "declare winner" proposal."""
    experiment = live_experiment(site, minimum_sample=500)
    add_traffic(experiment, "a", exposures=1000, conversions=100)
    add_traffic(experiment, "b", exposures=1000, conversions=180)
    [made] = experiments_optimize()
    return made


def _proposal_request(proposal) -> ApprovalRequest:
    return ApprovalRequest.objects.get(object_id=proposal.pk, content_type__model="optimizationproposal")


def test_approving_a_proposal_without_its_checklist_is_refused_and_changes_nothing(proposal, people):
    before = state()

    with pytest.raises(ChecklistIncomplete) as refused:
        proposal_decide(proposal=proposal, decider=people[1], approve=True, comment="clear win")
    with pytest.raises(ChecklistIncomplete):
        approval_decide(request=_proposal_request(proposal), decider=people[1], approve=True, checklist={})

    assert refused.value.missing == ["Evidence reviewed"]
    assert state() == before


def test_rejecting_a_proposal_without_a_comment_is_refused_and_changes_nothing(proposal, people):
    before = state()

    with pytest.raises(CommentRequired):
        proposal_decide(proposal=proposal, decider=people[1], approve=False)
    with pytest.raises(CommentRequired):
        approval_decide(request=_proposal_request(proposal), decider=people[1], approve=False, comment=" ")

    assert state() == before


def test_a_proposal_approved_with_its_checklist_is_applied(proposal, people):
    request = _proposal_request(proposal)

    approval_decide(request=request, decider=people[1], approve=True, checklist=checklist_all_ticked(request))

    proposal.refresh_from_db()
    request.refresh_from_db()
    assert (proposal.status, request.status, request.checklist) == (
        "approved",
        RequestStatus.APPROVED,
        {"Evidence reviewed": True},
    )
