"""Human in the loop: submit, approve, reject, and edits that send objects back.

Rules (PRODUCT.md section 5):
- an object is created as version 1 in draft (:func:`approvable_create`) and goes live
  only through an approved :class:`ApprovalRequest`;
- the requester never decides their own request, superusers included (also a
  database constraint);
- only members of the Approvers group (or superusers) decide;
- an approval confirms every item of the request's checklist; a rejection says why;
- editing an approved object makes a new version that needs approval again; the
  published snapshot keeps serving until then;
- every action is written to the audit log;
- an experiment's design is checked on create, edit, submit and approve, and where it
  runs on its slot on submit and approve (:mod:`personalization.services.experiment_checks`).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from core import hooks
from core.config_cache import bump
from personalization.models import (
    ApprovalRequest,
    ApprovalTemplate,
    AuditLog,
    ContentVariant,
    Experiment,
    ExperimentArm,
    Offer,
    RequestStatus,
    ScarcityRule,
    Slot,
    Status,
)
from personalization.services import experiment_checks

DECISIONS_NAMESPACE = "decisions"
APPROVERS_GROUP = "Approvers"


class ApprovalError(Exception):
    """An approval action that the rules refuse; nothing was changed."""

    code = "approval_refused"


class SelfApprovalRefused(ApprovalError):
    code = "self_approval"


class NotAnApprover(ApprovalError):
    code = "not_an_approver"


class NotPending(ApprovalError):
    code = "not_pending"


class ChecklistIncomplete(ApprovalError):
    """An approval that does not confirm every item of the request's checklist."""

    code = "checklist_incomplete"

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"Tick every checklist item before approving. Not ticked: {'; '.join(missing)}.")
        self.missing = missing


class CommentRequired(ApprovalError):
    """A rejection without a comment: the requester needs to know what to fix."""

    code = "comment_required"


class NotANewDraft(ApprovalError):
    """A creation that would skip the approval flow, or set an offer's stock without its confirmation."""

    code = "not_a_new_draft"


# Facts about the world rather than approved content: they change without a new version.
LIVE_DATA_FIELDS = ("stock_remaining", "stock_updated_at", "stock_confirmed_by", "restock_at")
_NOT_CONTENT = ["id", "status", "version", "published", "published_version", "created_by", "created_at", "updated_at"]


def snapshot(obj) -> dict:
    """The content of an object's current version, JSON-ready."""
    data = model_to_dict(obj, exclude=[*_NOT_CONTENT, *LIVE_DATA_FIELDS])
    if isinstance(obj, Experiment):
        data["arms"] = [
            {"variant": arm.variant_id, "is_control": arm.is_control, "weight": arm.weight, "is_paused": arm.is_paused}
            for arm in obj.arms.all()
        ]
    return _jsonable(data)


def _jsonable(value):
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def audit(*, actor, action: str, obj, changes: dict | None = None) -> AuditLog:
    return AuditLog.objects.create(
        actor=actor,
        action=action,
        content_type=ContentType.objects.get_for_model(obj),
        object_id=obj.pk,
        object_repr=str(obj)[:200],
        changes=_jsonable(changes or {}),
    )


def is_approver(user) -> bool:
    return bool(user.is_active and (user.is_superuser or user.groups.filter(name=APPROVERS_GROUP).exists()))


def decision_check(*, template: ApprovalTemplate, approve: bool, comment: str, checklist: dict | None) -> None:
    """Refuse a decision that skips a step: an approval must confirm every item of the
    template's checklist (:class:`ChecklistIncomplete`, naming those not ticked), a
    rejection must say why (:class:`CommentRequired`)."""
    if approve:
        checklist = checklist or {}
        missing = [item for item in template.checklist if checklist.get(item) is not True]
        if missing:
            raise ChecklistIncomplete(missing)
    elif not comment.strip():
        raise CommentRequired("Say why it is rejected, so the requester can fix it.")


def checklist_all_ticked(request: ApprovalRequest) -> dict[str, bool]:
    """Every item of the request's checklist, confirmed: what an approver who checked
    them all sends. For callers that approve in a person's name (demo content,
    benchmarks, tests)."""
    return dict.fromkeys(request.template.checklist, True)


# What a new object may not bring with it: approval state (it goes live only through the
# approval flow) and an offer's stock (reported through offer_stock_set, which records
# when and by whom it was confirmed).
_NOT_NEW = {"published": None, "published_version": None, "version": 1, "status": Status.DRAFT}
_STOCK_REPORT = {"stock_remaining": None, "stock_updated_at": None, "stock_confirmed_by": ""}
APPROVABLE_MODELS = (ContentVariant, Offer, Experiment, ScarcityRule)


@transaction.atomic
def approvable_create(*, obj, actor, arms: list[dict] | None = None):
    """Save a new variant, offer, experiment or scarcity rule as version 1 in draft, audited.

    ``obj`` is an unsaved instance with its fields set (an admin form's instance, or one a
    caller built); ``arms`` are an experiment's arms as in :func:`snapshot`. The object is
    validated (``full_clean``: a ``ValidationError`` saves nothing) and its creator is
    ``actor``. Refused with :class:`NotANewDraft`, nothing saved: an object already saved,
    approved, live or past version 1, and an offer that carries a stock report (the
    stock is set afterwards with ``offer_stock_set``). An experiment's arms are checked
    too (:func:`~personalization.services.experiment_checks.design_check`: a
    ``ValidationError`` naming the field, nothing saved).
    """
    if not isinstance(obj, APPROVABLE_MODELS) or obj.pk is not None:
        raise NotANewDraft(f"{obj!r} is not a new variant, offer, experiment or scarcity rule.")
    if any(getattr(obj, name) != value for name, value in _NOT_NEW.items()):
        raise NotANewDraft("A new object starts as version 1 in draft: it goes live only through an approval.")
    if isinstance(obj, Offer) and any(getattr(obj, name) != value for name, value in _STOCK_REPORT.items()):
        raise NotANewDraft(
            "An offer's stock is reported with offer_stock_set, which records when and by whom it was confirmed."
        )
    if arms and not isinstance(obj, Experiment):
        raise NotANewDraft("Only an experiment has arms.")
    obj.created_by = actor
    obj.full_clean()
    if isinstance(obj, Experiment):
        experiment_checks.design_check(experiment=obj, arms=arms or [])
    obj.save()
    if arms:
        _arms_create(obj, arms)
    audit(actor=actor, action="created", obj=obj, changes={"version": obj.version, "snapshot": snapshot(obj)})
    return obj


@transaction.atomic
def approval_submit(*, obj, requester) -> ApprovalRequest:
    """Submit the object's current version for approval (withdrawing an older request).

    An experiment that could not run as it is (its design, or another experiment on its
    slot: :mod:`~personalization.services.experiment_checks`) is refused with a
    ``ValidationError`` naming the field, and nothing changes.
    """
    obj = type(obj).objects.select_for_update().get(pk=obj.pk)
    if isinstance(obj, Experiment):
        experiment_checks.design_check(experiment=obj, arms=experiment_checks.arms_of(obj))
        experiment_checks.slot_place(experiment=obj)
    content_type = ContentType.objects.get_for_model(obj)
    ApprovalRequest.objects.filter(content_type=content_type, object_id=obj.pk, status=RequestStatus.PENDING).update(
        status=RequestStatus.WITHDRAWN, decided_at=timezone.now()
    )
    request = ApprovalRequest.objects.create(
        content_type=content_type,
        object_id=obj.pk,
        version=obj.version,
        snapshot=snapshot(obj),
        previous=obj.published,
        template=ApprovalTemplate.objects.get(object_type=content_type.model),
        requester=requester,
    )
    obj.status = Status.PENDING
    obj.save(update_fields=["status", "updated_at"])
    audit(actor=requester, action="submitted", obj=obj, changes={"version": obj.version})
    return request


# Requests about objects that are not versioned content (optimizer proposals) are
# decided by their own service, registered by model name (PersonalizationConfig.ready):
# the optimizer imports this module, not the other way round.
_DECIDERS: dict[str, Callable[..., object]] = {}


def register_decider(model: str, decide: Callable[..., object]) -> None:
    _DECIDERS[model] = decide


@transaction.atomic
def approval_decide(
    *, request: ApprovalRequest, decider, approve: bool, comment: str = "", checklist: dict | None = None
) -> ApprovalRequest:
    """Approve or reject a pending request. Refusals raise and change nothing.

    Refused: a request not pending (:class:`NotPending`), its requester deciding
    (:class:`SelfApprovalRefused`), a decider not an approver (:class:`NotAnApprover`),
    an approval that does not tick every item of the request's checklist or a
    rejection without a comment (:func:`decision_check`), an approval of a version
    edited since, and the approval of an experiment that could not run as the world is
    now (its design, its variants not serving, another experiment on its slot: a
    ``ValidationError`` naming the field). A mutually exclusive experiment's range of
    its slot's visitors is placed here. Optimizer proposals are not versioned objects: their requests are
    decided by :func:`personalization.services.optimizer.proposal_decide`, under the
    same rules.
    """
    own_decider = _DECIDERS.get(request.content_type.model)
    if own_decider is not None:
        own_decider(proposal=request.target, decider=decider, approve=approve, comment=comment, checklist=checklist)
        return ApprovalRequest.objects.get(pk=request.pk)
    request = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != RequestStatus.PENDING:
        raise NotPending(f"This request is {request.status}.")
    if decider.pk == request.requester_id:
        raise SelfApprovalRefused("Nobody approves their own request.")
    if not is_approver(decider):
        raise NotAnApprover("Only approvers decide approval requests.")
    decision_check(template=request.template, approve=approve, comment=comment, checklist=checklist)
    obj = request.content_type.model_class().objects.select_for_update().get(pk=request.object_id)
    if approve and obj.version != request.version:
        raise NotPending("The object was edited after this request; the new version needs its own request.")
    if approve and isinstance(obj, Experiment):
        arms = experiment_checks.arms_of(obj)
        experiment_checks.design_check(experiment=obj, arms=arms)
        experiment_checks.serving_check(arms=arms)
        Slot.objects.select_for_update().get(pk=obj.slot_id)  # approvals on one slot see each other
        obj.exclusion_start = experiment_checks.slot_place(experiment=obj)
    now = timezone.now()
    request.status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
    request.decider = decider
    request.comment = comment
    request.checklist = checklist or {}
    request.decided_at = now
    request.save()
    if approve:
        obj.published = request.snapshot
        obj.published_version = request.version
        obj.status = Status.LIVE
        if isinstance(obj, Experiment) and obj.started_at is None:
            obj.started_at = now
        obj.save()
        bump(DECISIONS_NAMESPACE)
    else:
        obj.status = Status.DRAFT
        obj.save(update_fields=["status", "updated_at"])
    audit(
        actor=decider,
        action="approved" if approve else "rejected",
        obj=obj,
        changes={"version": request.version, "comment": comment, "checklist": request.checklist},
    )
    hooks.feed("approval_decided", request=request, obj=obj)
    return request


@transaction.atomic
def approvable_edit(*, obj, actor, changes: dict):
    """Apply field changes to an approvable object.

    An object that has ever been approved gets a new version in draft; its published
    snapshot keeps serving until the new version is approved. A pending request for
    the old version is withdrawn.
    """
    obj = type(obj).objects.select_for_update().get(pk=obj.pk)
    before = snapshot(obj)
    for field, value in changes.items():
        setattr(obj, field, value)
    obj.full_clean()
    if isinstance(obj, Experiment):
        experiment_checks.design_check(experiment=obj, arms=experiment_checks.arms_of(obj))
    diff = _diff(before, snapshot(obj))
    if not diff:
        live = [field for field in changes if field in LIVE_DATA_FIELDS]
        if live:
            obj.save(update_fields=[*live, "updated_at"])
            audit(actor=actor, action="updated", obj=obj, changes={field: changes[field] for field in live})
        return obj
    return _new_version(obj, actor=actor, diff=diff)


def _diff(before: dict, after: dict) -> dict:
    return {key: {"from": before.get(key), "to": after.get(key)} for key in after if before.get(key) != after.get(key)}


def _new_version(obj, *, actor, diff: dict):
    """Save ``obj`` as its next version in draft, withdraw a pending request, audit."""
    obj.version += 1
    if obj.status != Status.ARCHIVED:
        obj.status = Status.DRAFT
    obj.save()
    ApprovalRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=obj.pk, status=RequestStatus.PENDING
    ).update(status=RequestStatus.WITHDRAWN, decided_at=timezone.now())
    audit(actor=actor, action="edited", obj=obj, changes={"version": obj.version, "diff": diff})
    return obj


def approval_required(obj) -> bool:
    """Offers need approval only with a discount; variants, experiments and scarcity rules always."""
    if isinstance(obj, Offer):
        return obj.needs_approval
    return isinstance(obj, ContentVariant | Experiment | ScarcityRule)


class ApprovalRequired(ApprovalError):
    code = "approval_required"


@transaction.atomic
def offer_publish_without_approval(*, offer: Offer, actor) -> Offer:
    """Put an offer without a discount live at its current version, with no approver.

    Only discounts need an approval (PRODUCT.md section 5): an offer with one is
    refused with :class:`ApprovalRequired` and nothing changes. A pending request for
    the offer is withdrawn, as it is no longer needed. Publishing the version that is
    already live changes nothing and writes no audit entry.
    """
    offer = Offer.objects.select_for_update().get(pk=offer.pk)
    if offer.needs_approval:
        raise ApprovalRequired("An offer with a discount goes live only through an approved request.")
    if offer.status == Status.LIVE and offer.published_version == offer.version:
        return offer
    ApprovalRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(offer), object_id=offer.pk, status=RequestStatus.PENDING
    ).update(status=RequestStatus.WITHDRAWN, decided_at=timezone.now())
    offer.published = snapshot(offer)
    offer.published_version = offer.version
    offer.status = Status.LIVE
    offer.save()
    bump(DECISIONS_NAMESPACE)
    audit(actor=actor, action="published", obj=offer, changes={"version": offer.version, "without_approval": True})
    return offer


def _arms_create(experiment: Experiment, arms: list[dict]) -> None:
    """The experiment's arms, as :func:`snapshot` lists them (``is_paused`` defaults to False)."""
    ExperimentArm.objects.bulk_create(
        ExperimentArm(
            experiment=experiment,
            variant_id=arm["variant"],
            is_control=arm["is_control"],
            weight=arm["weight"],
            is_paused=arm.get("is_paused", False),
        )
        for arm in arms
    )


def _arm_rows(arms) -> list[tuple]:
    return sorted((arm["variant"], arm["is_control"], arm["weight"], arm["is_paused"]) for arm in arms)


@transaction.atomic
def experiment_edit(*, experiment: Experiment, actor, changes: dict, arms: list[dict] | None = None) -> Experiment:
    """Edit an experiment's fields and arms as one new version (see :func:`approvable_edit`).

    ``arms`` is the whole set of arms wanted, as in :func:`snapshot` (``variant`` id,
    ``is_control``, ``weight``, ``is_paused``); ``None`` keeps the arms. The decision
    engine and the optimizer read a live experiment's arms from their rows, so the
    arms of an experiment that was ever approved cannot change here
    (:class:`ApprovalError`, nothing changed): weights move through the optimizer's
    proposals and people's approved requests, other designs are a new experiment. A
    design that could not run is refused with a ``ValidationError`` naming the field
    (:func:`~personalization.services.experiment_checks.design_check`), nothing changed.
    """
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if arms is None or _arm_rows(arms) == _arm_rows(snapshot(experiment)["arms"]):
        return approvable_edit(obj=experiment, actor=actor, changes=changes)
    if experiment.published is not None:
        raise ApprovalError("The arms of an approved experiment change only through optimizer proposals.")
    before = snapshot(experiment)
    for field, value in changes.items():
        setattr(experiment, field, value)
    experiment.full_clean()
    experiment_checks.design_check(experiment=experiment, arms=arms)
    experiment.arms.all().delete()
    _arms_create(experiment, arms)
    return _new_version(experiment, actor=actor, diff=_diff(before, snapshot(experiment)))
