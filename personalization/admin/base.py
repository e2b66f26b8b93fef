"""The authoring admin of everything that goes live only through an approval."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from personalization.models import ApprovalRequest, Status
from personalization.services.approvals import (
    approvable_create,
    approvable_edit,
    approval_required,
    approval_submit,
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


def admin_change_url(obj) -> str | None:
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return None


def refusal_text(refusal: ValidationError) -> str:
    """A service's refusal as one line, each message after the field it names."""
    if not hasattr(refusal, "error_dict"):
        return " ".join(refusal.messages)
    return " ".join(
        message if field == NON_FIELD_ERRORS else f"{field}: {message}"
        for field, messages in refusal.message_dict.items()
        for message in messages
    )


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


class ApprovableAdmin(admin.ModelAdmin):
    """Authoring of an object that goes live only through an approval.

    The one path of every such admin: a new object and an edit are saved in
    ``save_related``, with the inlines, through the services - :meth:`create`
    (``approvable_create``: version 1 in draft) and :meth:`edit` (one new version); the
    "Submit for approval" action submits the selected objects' current versions.
    """

    readonly_fields = APPROVAL_FIELDS
    actions = ["submit_for_approval"]
    list_select_related = ["site"]
    # What the approved version does while a newer draft waits: "Version 1 keeps serving ..."
    while_draft_waits = "keeps serving"

    def get_fieldsets(self, request, obj=None):
        fields = [name for name in self.get_fields(request, obj) if name not in APPROVAL_FIELDS]
        return [(None, {"fields": fields}), ("Approval", {"fields": APPROVAL_FIELDS})]

    def save_model(self, request, obj, form, change):
        pass  # saved in save_related, with the inlines, by a service

    def save_related(self, request, form, formsets, change):
        obj = form.instance
        if not change:
            self.create(request, obj=obj, formsets=formsets)
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
                f"Saved as version {edited.version} (draft). Version {edited.published_version} "
                f"{self.while_draft_waits} {next_step}",
                messages.WARNING,
            )

    def create(self, request, *, obj, formsets):
        """Save the admin form's new (unsaved) ``obj``; it keeps its primary key."""
        return approvable_create(obj=obj, actor=request.user)

    def edit(self, request, *, obj, changes: dict, formsets):
        return approvable_edit(obj=obj, actor=request.user, changes=changes)

    def construct_change_message(self, request, form, formsets, add=False):
        # inlines are written by the services, not formset.save(), and land in the audit
        # log; the admin history names only the saved formsets
        saved = [formset for formset in formsets if hasattr(formset, "new_objects")]
        return super().construct_change_message(request, form, saved, add)

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
                try:
                    approval_submit(obj=obj, requester=request.user)
                except ValidationError as refusal:
                    self.message_user(request, f"{obj} was not submitted: {refusal_text(refusal)}", messages.ERROR)
                    continue
                submitted.append(f"{obj} v{obj.version}")
        if submitted:
            self.message_user(request, f"Submitted for approval: {', '.join(submitted)}.", messages.SUCCESS)

    @admin.display(description="Currently serving")
    def currently_serving(self, obj):
        if obj is None or obj.published is None:
            return "Nothing: no version has been approved yet."
        state = "serving" if obj.serving else f"not serving ({obj.status})"
        return format_html(
            "<p>Version {} ({})</p><pre>{}</pre>", obj.published_version, state, pretty_json(obj.published)
        )

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
