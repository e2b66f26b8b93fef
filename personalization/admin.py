"""Admin for marketers and approvers: authoring, the approvals queue, and the records.

Every write goes through the approval services, so the admin, the API and the tests
behave the same: saving an existing object is an edit through ``approvable_edit`` (an
approved object gets a new draft version while its published snapshot keeps serving),
and nothing goes live except through the approvals queue or, for offers without a
discount, the "Publish" action.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from journeys.admin import ReadOnlyAdmin
from personalization.models import (
    ApprovalRequest,
    ApprovalTemplate,
    Assignment,
    AuditLog,
    ContentVariant,
    Experiment,
    ExperimentArm,
    Exposure,
    Offer,
    OptimizationProposal,
    PersonalizationRecord,
    RequestStatus,
    Slot,
    Status,
)
from personalization.services.approvals import (
    ApprovalError,
    approvable_edit,
    approval_decide,
    approval_required,
    approval_submit,
    audit,
    experiment_edit,
    is_approver,
    offer_publish_without_approval,
    snapshot,
)

APPROVAL_FIELDS = [
    "status",
    "version",
    "published_version",
    "currently_serving",
    "approval_history",
    "created_by",
    "created_at",
    "updated_at",
]


def _admin_change_url(obj) -> str | None:
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return None


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


class ApprovableAdmin(admin.ModelAdmin):
    """Authoring of an object that goes live only through an approval."""

    readonly_fields = APPROVAL_FIELDS
    actions = ["submit_for_approval"]
    list_select_related = ["site"]

    def get_fieldsets(self, request, obj=None):
        fields = [name for name in self.get_fields(request, obj) if name not in APPROVAL_FIELDS]
        return [(None, {"fields": fields}), ("Approval", {"fields": APPROVAL_FIELDS})]

    def save_model(self, request, obj, form, change):
        if change:
            return  # an edit is saved in save_related, with the inlines, as one new version
        obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        obj = form.instance
        if not change:
            super().save_related(request, form, formsets, change)
            audit(
                actor=request.user,
                action="created",
                obj=obj,
                changes={"version": obj.version, "snapshot": snapshot(obj)},
            )
            return
        before = obj.version
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        edited = self.edit(request, obj=obj, changes=changes, formsets=formsets)
        obj.refresh_from_db()  # the admin's instance, for the messages and redirect that follow
        if edited.version != before and edited.published_version is not None:
            if approval_required(edited):
                next_step = "until this one is approved: submit it for approval."
            else:
                next_step = "until this one is published."
            self.message_user(
                request,
                f"Saved as version {edited.version} (draft). Version {edited.published_version} keeps serving "
                + next_step,
                messages.WARNING,
            )

    def edit(self, request, *, obj, changes: dict, formsets):
        return approvable_edit(obj=obj, actor=request.user, changes=changes)

    @admin.action(description="Submit for approval", permissions=["change"])
    def submit_for_approval(self, request, queryset):
        submitted = []
        for obj in queryset:
            if not approval_required(obj):
                self.message_user(request, f"{obj} needs no approval: publish it instead.", messages.WARNING)
            elif obj.status == Status.PENDING:
                self.message_user(request, f"{obj} is already waiting for approval.", messages.WARNING)
            elif obj.published_version == obj.version:
                self.message_user(request, f"{obj} version {obj.version} is already approved.", messages.WARNING)
            else:
                approval_submit(obj=obj, requester=request.user)
                submitted.append(f"{obj} v{obj.version}")
        if submitted:
            self.message_user(request, f"Submitted for approval: {', '.join(submitted)}.", messages.SUCCESS)

    @admin.display(description="Currently serving")
    def currently_serving(self, obj):
        if obj is None or obj.published is None:
            return "Nothing: no version has been approved yet."
        state = "serving" if obj.serving else f"not serving ({obj.status})"
        return format_html("<p>Version {} ({})</p><pre>{}</pre>", obj.published_version, state, _pretty(obj.published))

    @admin.display(description="Approval requests")
    def approval_history(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        requests = ApprovalRequest.objects.filter(
            content_type=ContentType.objects.get_for_model(obj), object_id=obj.pk
        ).select_related("requester", "decider")
        if not requests:
            return "None yet."
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">v{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:personalization_approvalrequest_change", args=[request.pk]),
                    request.version,
                    request.status,
                    request.requester,
                    request.decider or "",
                    request.comment,
                )
                for request in requests
            ),
        )
        return format_html(
            "<table><thead><tr><th>Version</th><th>Status</th><th>Requester</th><th>Decider</th><th>Comment</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )


@admin.register(Slot)
class SlotAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "site"]
    list_filter = ["site"]
    search_fields = ["key", "name"]


@admin.register(Offer)
class OfferAdmin(ApprovableAdmin):
    list_display = [
        "name",
        "sku",
        "site",
        "price",
        "currency",
        "discount_percent",
        "stock_remaining",
        "stock_updated_at",
        "stock_confirmed_by",
        "ends_at",
        "status",
        "version",
        "published_version",
    ]
    list_filter = ["site", "status", "currency"]
    search_fields = ["name", "sku"]
    readonly_fields = [*APPROVAL_FIELDS, "stock_updated_at", "stock_confirmed_by"]
    actions = ["submit_for_approval", "publish"]

    def save_model(self, request, obj, form, change):
        if not change and obj.stock_remaining is not None:
            obj.stock_updated_at = timezone.now()
            obj.stock_confirmed_by = request.user.get_username()
        super().save_model(request, obj, form, change)

    def edit(self, request, *, obj, changes, formsets):
        if "stock_remaining" in changes:
            # the low-stock cue shows only fresh stock, so the count carries when it was measured
            changes["stock_updated_at"] = timezone.now()
            changes["stock_confirmed_by"] = request.user.get_username()
        return super().edit(request, obj=obj, changes=changes, formsets=formsets)

    @admin.action(description="Publish (offers without a discount)", permissions=["change"])
    def publish(self, request, queryset):
        for offer in queryset:
            try:
                offer = offer_publish_without_approval(offer=offer, actor=request.user)
            except ApprovalError as error:
                self.message_user(request, f"{offer}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{offer} version {offer.version} is live.", messages.SUCCESS)


@admin.register(ContentVariant)
class ContentVariantAdmin(ApprovableAdmin):
    list_display = ["key", "name", "site", "slot", "strategy", "is_default", "status", "version", "published_version"]
    list_filter = ["site", "slot", "status", "strategy", "is_default"]
    search_fields = ["key", "name"]
    list_select_related = ["site", "slot"]


class ExperimentArmFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        controls = [
            form
            for form in self.forms
            if form.cleaned_data.get("is_control") and not form.cleaned_data.get("DELETE", False)
        ]
        if len(controls) > 1:
            raise forms.ValidationError("An experiment has exactly one control arm.")


class ExperimentArmInline(admin.TabularInline):
    """Arms of an experiment that was never approved; a live one's arms move only
    through the optimizer (the decision engine reads them from these rows)."""

    model = ExperimentArm
    formset = ExperimentArmFormSet
    fields = ["variant", "is_control", "weight", "is_paused"]

    def get_extra(self, request, obj=None, **kwargs):
        return 0 if obj is not None else 2

    def _frozen(self, obj) -> bool:
        return obj is not None and obj.published is not None

    def has_add_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_delete_permission(request, obj)


@admin.register(Experiment)
class ExperimentAdmin(ApprovableAdmin):
    list_display = ["key", "name", "site", "slot", "allocation", "status", "version", "published_version", "started_at"]
    list_filter = ["site", "status", "allocation"]
    search_fields = ["key", "name"]
    list_select_related = ["site", "slot"]
    readonly_fields = [*APPROVAL_FIELDS, "started_at", "ended_at", "winner"]
    inlines = [ExperimentArmInline]

    def edit(self, request, *, obj, changes, formsets):
        arms = None
        for formset in formsets:
            if formset.model is ExperimentArm and formset.has_changed():
                arms = [
                    {
                        "variant": form.cleaned_data["variant"].pk,
                        "is_control": form.cleaned_data["is_control"],
                        "weight": form.cleaned_data["weight"],
                        "is_paused": form.cleaned_data["is_paused"],
                    }
                    for form in formset.forms
                    if form.cleaned_data
                    and not form.cleaned_data.get("DELETE", False)
                    and (form.instance.pk is not None or form.has_changed())
                ]
        return experiment_edit(experiment=obj, actor=request.user, changes=changes, arms=arms)

    def construct_change_message(self, request, form, formsets, add=False):
        # on a change the arms are written by experiment_edit, not formset.save(), and
        # land in the audit log; the admin history names only the saved formsets
        saved = [formset for formset in formsets if hasattr(formset, "new_objects")]
        return super().construct_change_message(request, form, saved, add)


# Approvals queue


class DecisionForm(forms.Form):
    """An approver's decision: every checklist item must be ticked to approve."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 80}))

    def __init__(self, *args, checklist: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.checklist = checklist
        for index, item in enumerate(checklist):
            self.fields[f"item_{index}"] = forms.BooleanField(label=item, required=False)

    def clean(self):
        data = super().clean()
        if data.get("decision") == "approve" and not all(self.answers().values()):
            raise forms.ValidationError("Tick every checklist item before approving.")
        if data.get("decision") == "reject" and not data.get("comment", "").strip():
            self.add_error("comment", "Say why it is rejected, so the requester can fix it.")
        return data

    def checklist_fields(self):
        return [self[f"item_{index}"] for index in range(len(self.checklist))]

    def answers(self) -> dict[str, bool]:
        return {item: bool(self.cleaned_data.get(f"item_{index}")) for index, item in enumerate(self.checklist)}


def _shown(model, name: str, value):
    """A snapshot value as a person reads it: related objects by name, JSON indented."""
    if value is None or value == "":
        return "-"
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
        return _pretty(value)
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
            except ApprovalError as error:
                self.message_user(request, str(error), messages.ERROR)
                return HttpResponseRedirect(request.path)
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
            "target_url": _admin_change_url(target) if target is not None else None,
            "diff": [
                (name, _shown(model, name, old), _shown(model, name, new)) for name, old, new in diff_rows(approval)
            ],
            "first_version": approval.previous is None,
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
        return format_html("<pre>{}</pre>", _pretty(entry.changes))


@admin.register(OptimizationProposal)
class OptimizationProposalAdmin(ReadOnlyAdmin):
    """Read-only for now. Deciding a proposal is the optimizer's ``proposal_decide``
    (personalization/services/optimizer.py); its approve/reject actions belong here,
    as admin actions that call it, the way the approvals queue calls approval_decide."""

    list_display = ["created_at", "experiment", "kind", "status", "confidence", "guardrail_reason", "decided_at"]
    list_filter = ["status", "kind"]
    search_fields = ["experiment__key"]
    list_select_related = ["experiment"]
    date_hierarchy = "created_at"


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["assigned_at", "experiment", "visitor", "variant", "bucket"]
    list_filter = ["experiment"]
    search_fields = ["visitor__visitor_id"]
    list_select_related = ["experiment", "visitor", "variant"]


@admin.register(Exposure)
class ExposureAdmin(ReadOnlyAdmin):
    list_display = ["exposed_at", "session", "variant", "variant_version", "experiment"]
    list_filter = ["experiment", "variant"]
    search_fields = ["session__session_id"]
    list_select_related = ["session", "variant", "experiment"]
    date_hierarchy = "exposed_at"


@admin.register(PersonalizationRecord)
class PersonalizationRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "session",
        "personalization_type",
        "strategy",
        "variant",
        "engagement_time",
        "conversion_attributed",
        "confidence",
    ]
    list_filter = ["personalization_type", "strategy", "conversion_attributed"]
    search_fields = ["session__session_id"]
    list_select_related = ["session", "variant"]
    date_hierarchy = "created_at"


# Scarcity: rules with a live preview, offers whose terms really end, the claims ledger,
# the monitor's flags. Imports are here so this section reads on its own.

from personalization.models import (  # noqa: E402
    ClaimLedger,
    HoldoutMembership,
    MonitorFlag,
    RuleEvidence,
    ScarcityRule,
)
from personalization.services.scarcity.claims import rule_preview  # noqa: E402
from personalization.services.scarcity.monitor_flags import monitor_flag_resolve  # noqa: E402
from personalization.services.scarcity.offers import OfferTermsRefused, offer_edit, offer_terms_refusal  # noqa: E402
from personalization.services.scarcity.rules import scarcity_rule_pause, scarcity_rule_resume  # noqa: E402


class OfferTermsForm(forms.ModelForm):
    """An offer form that refuses, as a form error, relaunching ended terms within the
    cooldown or moving a deadline that visitors saw a countdown to (``offer_terms_refusal``)."""

    def clean(self):
        data = super().clean()
        if self.instance.pk is not None:
            # the instance still holds the stored values here; the form's go on it after clean()
            changes = {name: data[name] for name in self.changed_data if name in data}
            refusal = offer_terms_refusal(offer=self.instance, changes=changes)
            if refusal is not None:
                raise forms.ValidationError(refusal, code=OfferTermsRefused.code)
        return data


admin.site.unregister(Offer)


@admin.register(Offer)
class GuardedOfferAdmin(OfferAdmin):
    """Offers, edited through ``offer_edit``: the terms guard, and fresh low-stock evidence."""

    form = OfferTermsForm

    def edit(self, request, *, obj, changes, formsets):
        if "stock_remaining" in changes:
            changes["stock_updated_at"] = timezone.now()
            changes["stock_confirmed_by"] = request.user.get_username()
        try:
            return offer_edit(offer=obj, actor=request.user, changes=changes)
        except OfferTermsRefused as error:  # the form checked it; this is a race with another edit
            self.message_user(request, str(error), messages.ERROR)
            return obj


@admin.register(ScarcityRule)
class ScarcityRuleAdmin(ApprovableAdmin):
    """Scarcity rules. Saving a live rule's new wording makes a draft version; its
    approved text keeps showing until an approver approves the new one."""

    list_display = [
        "key",
        "name",
        "site",
        "trigger_type",
        "offer",
        "status",
        "version",
        "published_version",
        "would_show",
    ]
    list_filter = ["site", "status", "trigger_type", "intensity", "timing"]
    search_fields = ["key", "name", "message_template", "offer__sku"]
    list_select_related = ["site", "offer"]
    readonly_fields = ["live_preview", *APPROVAL_FIELDS]
    actions = ["submit_for_approval", "pause", "resume"]

    def save_related(self, request, form, formsets, change):
        if not change:
            return super().save_related(request, form, formsets, change)
        obj = form.instance
        before = obj.version
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        edited = self.edit(request, obj=obj, changes=changes, formsets=formsets)
        obj.refresh_from_db()
        if edited.version != before and edited.published_version is not None:
            self.message_user(
                request,
                f"Saved as version {edited.version} (draft). Version {edited.published_version} keeps showing its "
                "approved text until this one is approved: submit it for approval.",
                messages.WARNING,
            )

    @admin.action(description="Submit for approval", permissions=["change"])
    def submit_for_approval(self, request, queryset):
        submitted = []
        for rule in queryset:
            if rule.status == Status.PENDING:
                self.message_user(request, f"{rule} is already waiting for approval.", messages.WARNING)
            elif rule.published_version == rule.version:
                self.message_user(request, f"{rule} version {rule.version} is already approved.", messages.WARNING)
            else:
                approval_submit(obj=rule, requester=request.user)
                submitted.append(f"{rule} v{rule.version}")
        if submitted:
            self.message_user(request, f"Submitted for approval: {', '.join(submitted)}.", messages.SUCCESS)

    @admin.action(description="Pause (stop showing at once)", permissions=["change"])
    def pause(self, request, queryset):
        for rule in queryset:
            scarcity_rule_pause(rule=rule, actor=request.user)
        self.message_user(request, f"Paused {queryset.count()} rule(s).", messages.SUCCESS)

    @admin.action(description="Resume the approved version", permissions=["change"])
    def resume(self, request, queryset):
        for rule in queryset:
            scarcity_rule_resume(rule=rule, actor=request.user)
        self.message_user(request, f"Resumed {queryset.count()} rule(s).", messages.SUCCESS)

    @admin.display(description="Live preview")
    def live_preview(self, rule):
        if rule is None or rule.pk is None:
            return "Once saved, this shows what the rule would display now and why."
        lines = rule_preview(rule=rule)
        if not lines:
            return "-"
        return format_html_join("", "<p>{}</p>", ((line,) for line in lines))

    @admin.display(description="Now")
    def would_show(self, rule):
        lines = rule_preview(rule=rule)
        return lines[0] if lines else "-"


@admin.register(ClaimLedger)
class ClaimLedgerAdmin(ReadOnlyAdmin):
    """Every cue shown, with its evidence: read-only, never deleted by hand."""

    list_display = [
        "shown_at",
        "session",
        "rule",
        "rule_version",
        "trigger_type",
        "text",
        "evidence_measured_at",
        "ends_at",
    ]
    list_filter = ["trigger_type", ("rule", admin.RelatedOnlyFieldListFilter), "shown_at"]
    search_fields = ["session__session_id", "text", "rule__key"]
    list_select_related = ["session", "rule"]
    date_hierarchy = "shown_at"
    fields = [
        "shown_at",
        "session",
        "rule",
        "rule_version",
        "trigger_type",
        "text",
        "evidence_shown",
        "evidence_measured_at",
        "ends_at",
        "scored_at",
    ]
    readonly_fields = fields

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Evidence")
    def evidence_shown(self, claim):
        return format_html("<pre>{}</pre>", _pretty(claim.evidence))


@admin.register(MonitorFlag)
class MonitorFlagAdmin(ReadOnlyAdmin):
    """What the scarcity monitor flagged; resolving one is the only change."""

    list_display = ["raised_at", "rule", "kind", "summary", "updated_at", "resolved", "resolved_at"]
    list_filter = ["resolved", "kind", ("rule", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["rule"]
    date_hierarchy = "raised_at"
    actions = ["resolve"]

    def has_delete_permission(self, request, obj=None):
        return False

    def has_resolve_permission(self, request):
        return request.user.has_perm("personalization.change_monitorflag")

    @admin.action(description="Mark resolved", permissions=["resolve"])
    def resolve(self, request, queryset):
        for flag in queryset:
            monitor_flag_resolve(flag=flag, actor=request.user)
        self.message_user(request, f"Resolved {queryset.count()} flag(s).", messages.SUCCESS)

    @admin.display(description="Details")
    def summary(self, flag):
        details = flag.details
        if flag.kind == "stock_never_moved":
            return (
                f"stock {details.get('stock')} claimed since {details.get('since')} "
                f"({details.get('cues_in_period')} cues in the last {details.get('hours')} h)"
            )
        return f"{details.get('count')} countdown(s) shown after {details.get('ends_at')}"


@admin.register(RuleEvidence)
class RuleEvidenceAdmin(ReadOnlyAdmin):
    list_display = ["rule", "rule_version", "values", "measured_at", "computed_at"]
    list_select_related = ["rule"]
    search_fields = ["rule__key"]


@admin.register(HoldoutMembership)
class HoldoutMembershipAdmin(ReadOnlyAdmin):
    list_display = ["assigned_at", "rule", "session", "in_holdout", "bucket"]
    list_filter = ["in_holdout", ("rule", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["session__session_id"]
    list_select_related = ["rule", "session"]
    date_hierarchy = "assigned_at"
