"""People in control of a running experiment: stop it, declare a winner, pause or resume an arm.

A marketer asks (:func:`experiment_action_request`); nothing changes until an approver
approves. The request is an :class:`OptimizationProposal` with ``requested_by`` set - the
same row the optimizer writes for the same kinds, so one function applies both
(:func:`~personalization.services.optimizer.proposal_decide`: the approval rules, the
row locks, superseding what an ended experiment leaves pending, the decision cache) and
the sample-ratio test counts from a person's pause or resume as from the optimizer's.
Its :class:`ApprovalRequest` (requester: the person; template ``experimentaction``) is
in the approvals queue like any other, with the checklist and comment rules of every
approval. The requests, their decisions and the audit log entries are the record.

Effects once approved: a stop ends the experiment (its visitors see the slot's usual
content again); a winner ends it and its variant then serves to every visitor of the
slot (decisions, reason ``winner``), consent or not, as it uses no behavioural data,
until a stop of the same experiment ends that rollout or a later winner replaces it; a
paused arm gets no new visitors (its share goes to the active arms in proportion to
their weights, and its visitors are reassigned) until it is resumed.

Refused when requested (a ``ValidationError`` naming the field, nothing written) and
again when approved (``ProposalStale``, nothing changed): the rules of
:func:`~personalization.services.experiment_checks.action_refusal`; a request of a kind
already waiting for the experiment (the optimizer's included); a request without a
reason; a requester who may not change experiments (:class:`NotAnAuthor`).
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import hooks
from personalization.models import (
    ApprovalRequest,
    ApprovalTemplate,
    ContentVariant,
    Experiment,
    ExperimentArm,
    OptimizationProposal,
    ProposalKind,
    ProposalStatus,
)
from personalization.services import experiment_checks
from personalization.services.approvals import ApprovalError, audit

ACTION_TEMPLATE = "experimentaction"
HUMAN_KINDS = (ProposalKind.STOP, ProposalKind.DECLARE_WINNER, ProposalKind.PAUSE_VARIANT, ProposalKind.RESUME_VARIANT)
WITH_VARIANT = (ProposalKind.DECLARE_WINNER, ProposalKind.PAUSE_VARIANT, ProposalKind.RESUME_VARIANT)
DESCRIPTIONS = {
    ProposalKind.STOP: "Stop the experiment (after a winner: stop serving the winner)",
    ProposalKind.DECLARE_WINNER: "Declare a winner (it then serves to every visitor of the slot)",
    ProposalKind.PAUSE_VARIANT: "Pause an arm (it gets no new visitors)",
    ProposalKind.RESUME_VARIANT: "Resume a paused arm",
}


class NotAnAuthor(ApprovalError):
    code = "not_an_author"


@transaction.atomic
def experiment_action_request(
    *, experiment: Experiment, requester, kind: str, reason: str, variant: ContentVariant | None = None
) -> ApprovalRequest:
    """Ask approvers to stop ``experiment``, declare ``variant`` the winner, or pause or resume its arm.

    Returns the pending approval request; its target is the proposal that approval
    applies. Locks the experiment row, so two requests for one experiment serialize.
    """
    if not requester.has_perm("personalization.change_experiment"):
        raise NotAnAuthor("Only people who author experiments (Marketers) request changes to them.")
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    refusal = experiment_checks.Refusal()
    if kind not in HUMAN_KINDS:
        refusal.add("kind", f"Unknown action {kind!r}: one of {', '.join(HUMAN_KINDS)}.")
        refusal.raise_any()
    if kind in WITH_VARIANT and variant is None:
        refusal.add("variant", "Name the arm's variant.")
    if not reason.strip():
        refusal.add("reason", "Say why, for the approver and the record.")
    refusal.raise_any()
    proposed = _proposed(kind, variant)
    arms = list(ExperimentArm.objects.filter(experiment=experiment).select_related("variant"))
    found = experiment_checks.action_refusal(kind=kind, experiment=experiment, arms=arms, proposed=proposed)
    if found is not None:
        raise ValidationError({found[0]: [found[1]]})
    waiting = experiment.proposals.filter(kind=kind, status=ProposalStatus.PENDING).first()
    if waiting is not None:
        raise ValidationError(
            {"kind": [f"A {kind.replace('_', ' ')} of {experiment.key} already waits for approval (#{waiting.pk})."]}
        )
    now = timezone.now()
    action = {"at": now.isoformat(), "action": "requested", "by": requester.get_username(), "comment": reason}
    proposal = OptimizationProposal.objects.create(
        experiment=experiment,
        kind=kind,
        window=now.isoformat(),
        evidence={"rule": "requested", "reason": reason, "actions": [action]},
        proposed=proposed,
        status=ProposalStatus.PENDING,
        guardrail_reason=f"requested by {requester.get_username()}: {reason}"[:200],
        requested_by=requester,
    )
    request = ApprovalRequest.objects.create(
        content_type=ContentType.objects.get_for_model(OptimizationProposal),
        object_id=proposal.pk,
        version=1,
        snapshot={
            "experiment": experiment.key,
            "kind": kind,
            "action": DESCRIPTIONS[kind],
            "proposed": proposed,
            "reason": reason,
            "requested_by": requester.get_username(),
        },
        previous=None,
        template=ApprovalTemplate.objects.get(object_type=ACTION_TEMPLATE),
        requester=requester,
    )
    audit(
        actor=requester,
        action="submitted",
        obj=proposal,
        changes={"kind": kind, "proposed": proposed, "reason": reason},
    )
    hooks.feed("proposals_created", proposals=[proposal])
    return request


def _proposed(kind: str, variant: ContentVariant | None) -> dict:
    if kind == ProposalKind.STOP:
        return {"reason": "requested"}
    if kind == ProposalKind.DECLARE_WINNER:
        return {"variant": variant.pk, "key": variant.key}
    return {"variants": [{"variant": variant.pk, "key": variant.key}]}
