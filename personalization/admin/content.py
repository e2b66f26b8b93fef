"""Slots, content variants, and experiments with their arms."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from personalization.admin.base import APPROVAL_FIELDS, ApprovableAdmin
from personalization.models import ContentVariant, Experiment, ExperimentArm, Slot
from personalization.services.approvals import approvable_create, experiment_edit


@admin.register(Slot)
class SlotAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "site"]
    list_filter = ["site"]
    search_fields = ["key", "name"]


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


def arms_of(formsets) -> list[dict] | None:
    """The arms an experiment's arm formset asks for, as :func:`snapshot` lists them;
    None when the formset did not change."""
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
    return arms


@admin.register(Experiment)
class ExperimentAdmin(ApprovableAdmin):
    list_display = ["key", "name", "site", "slot", "allocation", "status", "version", "published_version", "started_at"]
    list_filter = ["site", "status", "allocation"]
    search_fields = ["key", "name"]
    list_select_related = ["site", "slot"]
    readonly_fields = [*APPROVAL_FIELDS, "started_at", "ended_at", "winner"]
    inlines = [ExperimentArmInline]

    def create(self, request, *, obj, formsets):
        return approvable_create(obj=obj, actor=request.user, arms=arms_of(formsets))

    def edit(self, request, *, obj, changes, formsets):
        return experiment_edit(experiment=obj, actor=request.user, changes=changes, arms=arms_of(formsets))
