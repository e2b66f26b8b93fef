"""The approvals queue (a request's page is the decide view), approval templates, the audit log, optimizer proposals."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin
from personalization.admin.base import admin_change_url, pretty_json, refusal_text
from personalization.models import (
    ApprovalRequest,
    ApprovalTemplate,
    AuditLog,
    ContentVariant,
    Experiment,
    OptimizationProposal,
    RequestStatus,
)
from personalization.selectors import experiment_power
from personalization.services.approvals import (
    ApprovalError,
    ChecklistIncomplete,
    CommentRequired,
    approval_decide,
    is_approver,
)


class DecisionForm(forms.Form):
    """An approver's decision: approve or reject, the checklist, a comment.

    What a decision needs (every item ticked to approve, a comment to reject) is
    ``approval_decide``'s rule; the decide view shows its refusal on this form.
    """

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 80}))

    def __init__(self, *args, checklist: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.checklist = checklist
        for index, item in enumerate(checklist):
            self.fields[f"item_{index}"] = forms.BooleanField(label=item, required=False)

    def checklist_fields(self):
        return [self[f"item_{index}"] for index in range(len(self.checklist))]

    def answers(self) -> dict[str, bool]:
        return {item: bool(self.cleaned_data.get(f"item_{index}")) for index, item in enumerate(self.checklist)}


def arms_shown(arms: list[dict]) -> str:
    """An experiment's arms as a person reads them: one line per arm, by variant key and name."""
    variants = ContentVariant.objects.select_related("slot").in_bulk([arm["variant"] for arm in arms])
    lines = []
    for arm in arms:
        variant = variants.get(arm["variant"])
        name = f"{variant.key} ({variant.name}, slot {variant.slot.key})" if variant else f"#{arm['variant']} (deleted)"
        role = "control" if arm["is_control"] else "treatment"
        paused = ", paused" if arm.get("is_paused") else ""
        lines.append(f"{name}: {role}, weight {arm['weight']:.0%}{paused}")
    return "\n".join(lines)


def _shown(model, name: str, value):
    """A snapshot value as a person reads it: related objects by name, JSON indented."""
    if value is None or value == "":
        return "-"
    if model is Experiment and name == "arms" and isinstance(value, list):
        return arms_shown(value) if value else "no arms"
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        field = None
    # A snapshot names a related object by id; some (an optimizer proposal's experiment)
    # by its key, which is shown as it is.
    if field is not None and field.many_to_one and isinstance(value, int):
        related = field.related_model._default_manager.filter(pk=value).first()
        return f"{related} (#{value})" if related is not None else f"#{value}"
    if isinstance(value, dict | list):
        return pretty_json(value)
    return str(value)


def diff_rows(approval: ApprovalRequest) -> list[tuple[str, object, object]]:
    """(field, before, after) for what the request changes against the live version;
    every field when nothing was live before."""
    after = approval.snapshot or {}
    before = approval.previous
    if before is None:
        return [(name, None, value) for name, value in after.items()]
    names = [*after, *(name for name in before if name not in after)]
    return [(name, before.get(name), after.get(name)) for name in names if before.get(name) != after.get(name)]


class WhoseRequestFilter(admin.SimpleListFilter):
    title = "whose"
    parameter_name = "whose"

    def lookups(self, request, model_admin):
        return [("mine", "My requests"), ("others", "Others' requests")]

    def queryset(self, request, queryset):
        if self.value() == "mine":
            return queryset.filter(requester=request.user)
        if self.value() == "others":
            return queryset.exclude(requester=request.user)
        return queryset


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    """The approvals queue. A request's page is the decide view: checklist, diff and
    approve/reject through ``approval_decide``; no field is ever edited directly."""

    list_display = [
        "__str__",
        "object_name",
        "status",
        "changed_fields",
        "requester",
        "requested_at",
        "decider",
        "decided_at",
    ]
    list_filter = [
        "status",
        WhoseRequestFilter,
        ("content_type", admin.RelatedOnlyFieldListFilter),
        ("requester", admin.RelatedOnlyFieldListFilter),
    ]
    date_hierarchy = "requested_at"
    decide_template = "admin/personalization/approvalrequest/decide.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("content_type", "template", "requester", "decider")
            .prefetch_related("target")
        )

    def get_ordering(self, request):
        pending_first = Case(
            When(status=RequestStatus.PENDING, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        return [pending_first.asc(), "-requested_at", "-id"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Object")
    def object_name(self, approval):
        return str(approval.target) if approval.target is not None else f"#{approval.object_id} (deleted)"

    @admin.display(description="Changes")
    def changed_fields(self, approval):
        if approval.previous is None:
            return "first version"
        return ", ".join(name for name, _, _ in diff_rows(approval))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        approval = self.get_object(request, unquote(object_id))
        if approval is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, approval):
            raise PermissionDenied
        form = DecisionForm(request.POST if request.method == "POST" else None, checklist=approval.template.checklist)
        if form.is_bound and form.is_valid():
            approve = form.cleaned_data["decision"] == "approve"
            try:
                approval_decide(
                    request=approval,
                    decider=request.user,
                    approve=approve,
                    comment=form.cleaned_data["comment"],
                    checklist=form.answers(),
                )
            except ChecklistIncomplete as error:
                form.add_error(None, str(error))
            except CommentRequired as error:
                form.add_error("comment", str(error))
            except ApprovalError as error:
                self.message_user(request, str(error), messages.ERROR)
                return HttpResponseRedirect(request.path)
            except ValidationError as refusal:  # what was submitted could not run as the world is now
                self.message_user(request, f"Not approved: {refusal_text(refusal)}", messages.ERROR)
                return HttpResponseRedirect(request.path)
            else:
                self.message_user(
                    request,
                    f"{approval.target} v{approval.version} {'approved' if approve else 'rejected'}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:personalization_approvalrequest_changelist"))
        model = approval.content_type.model_class()
        target = approval.target
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Approval request: {approval}",
            "approval": approval,
            "target": target,
            "target_url": admin_change_url(target) if target is not None else None,
            "diff": [
                (name, _shown(model, name, old), _shown(model, name, new)) for name, old, new in diff_rows(approval)
            ],
            "first_version": approval.previous is None,
            "power": experiment_power(experiment=target).as_text() if isinstance(target, Experiment) else None,
            "recorded_checklist": list(approval.checklist.items()),
            "form": form,
            "can_decide": (
                approval.status == RequestStatus.PENDING
                and approval.requester_id != request.user.pk
                and is_approver(request.user)
            ),
            "is_requester": approval.requester_id == request.user.pk,
            "is_popup": False,
            "to_field": None,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.decide_template, context)


@admin.register(ApprovalTemplate)
class ApprovalTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "object_type", "checklist"]


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "content_type", "object_repr"]
    list_filter = [
        "action",
        ("actor", admin.RelatedOnlyFieldListFilter),
        ("content_type", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["object_repr"]
    date_hierarchy = "at"
    list_select_related = ["actor", "content_type"]
    fields = ["at", "actor", "action", "content_type", "object_id", "object_repr", "what_changed"]
    readonly_fields = fields

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Changes")
    def what_changed(self, entry):
        return format_html("<pre>{}</pre>", pretty_json(entry.changes))


@admin.register(OptimizationProposal)
class OptimizationProposalAdmin(ReadOnlyAdmin):
    """Read-only for now. Deciding a proposal is the optimizer's ``proposal_decide``
    (personalization/services/optimizer.py); its approve/reject actions belong here,
    as admin actions that call it, the way the approvals queue calls approval_decide."""

    list_display = [
        "created_at",
        "experiment",
        "kind",
        "status",
        "requested_by",
        "confidence",
        "guardrail_reason",
        "decided_at",
    ]
    list_filter = ["status", "kind", ("requested_by", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["experiment__key"]
    list_select_related = ["experiment", "requested_by"]
    date_hierarchy = "created_at"
