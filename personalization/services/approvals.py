"""Human in the loop: submit, approve, reject, and edits that send objects back.

Rules (PRODUCT.md section 5):
- an object goes live only through an approved :class:`ApprovalRequest`;
- the requester never decides their own request, superusers included (also a
  database constraint);
- only members of the Approvers group (or superusers) decide;
- editing an approved object makes a new version that needs approval again; the
  published snapshot keeps serving until then;
- every action is written to the audit log.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from journeys.config_cache import bump
from personalization.models import (
    ApprovalRequest,
    ApprovalTemplate,
    AuditLog,
    ContentVariant,
    Experiment,
    Offer,
    RequestStatus,
    Status,
)

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


def snapshot(obj) -> dict:
    """The content of an object's current version, JSON-ready."""
    data = model_to_dict(
        obj,
        exclude=["id", "status", "version", "published", "published_version", "created_by", "created_at", "updated_at"],
    )
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


@transaction.atomic
def approval_submit(*, obj, requester) -> ApprovalRequest:
    """Submit the object's current version for approval (withdrawing an older request)."""
    obj = type(obj).objects.select_for_update().get(pk=obj.pk)
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


@transaction.atomic
def approval_decide(
    *, request: ApprovalRequest, decider, approve: bool, comment: str = "", checklist: dict | None = None
) -> ApprovalRequest:
    """Approve or reject a pending request. Refusals raise and change nothing."""
    request = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != RequestStatus.PENDING:
        raise NotPending(f"This request is {request.status}.")
    if decider.pk == request.requester_id:
        raise SelfApprovalRefused("Nobody approves their own request.")
    if not is_approver(decider):
        raise NotAnApprover("Only approvers decide approval requests.")
    obj = request.content_type.model_class().objects.select_for_update().get(pk=request.object_id)
    if approve and obj.version != request.version:
        raise NotPending("The object was edited after this request; the new version needs its own request.")
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
    after = snapshot(obj)
    diff = {key: {"from": before.get(key), "to": after.get(key)} for key in after if before.get(key) != after.get(key)}
    if not diff:
        return obj
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
    """Offers need approval only with a discount; variants and experiments always."""
    if isinstance(obj, Offer):
        return obj.needs_approval
    return isinstance(obj, ContentVariant | Experiment)
