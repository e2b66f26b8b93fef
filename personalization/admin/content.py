"""Slots, content variants, and experiments with their arms."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from personalization.admin.base import APPROVAL_FIELDS, ApprovableAdmin
from personalization.models import ContentVariant, Experiment, ExperimentArm, Slot
from personalization.services.approvals import approvable_create, experiment_edit
from personalization.services.experiment_checks import design_check


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


class ExperimentForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The arms formset checks the design with the service after this form is
        # validated, and puts the errors about the experiment's own fields (allocation)
        # on this form: it reaches the form through the instance they share.
        self.instance.admin_form = self


_ARM_FIELD = re.compile(r"arms\[(\d+)\]\.(\w+)")


class ExperimentArmFormSet(forms.BaseInlineFormSet):
    """The arms, checked with the experiment by the service's ``design_check``: an
    error about one arm shows on that arm's field, one about the arms as a whole above
    them, one about an experiment field on that field."""

    def clean(self):
        super().clean()
        experiment = self.instance
        form = getattr(experiment, "admin_form", None)
        if any(self.errors) or (form is not None and not form.is_valid()):
            return  # each form's own errors first
        if experiment.published is not None:
            return  # the arms are frozen: the services check them on submit and approve
        shown = [
            arm_form for arm_form in self.forms if arm_form.cleaned_data and not self._should_delete_form(arm_form)
        ]
        arms = [
            {
                "variant": arm_form.cleaned_data["variant"].pk,
                "is_control": arm_form.cleaned_data["is_control"],
                "weight": arm_form.cleaned_data["weight"],
                "is_paused": arm_form.cleaned_data["is_paused"],
            }
            for arm_form in shown
        ]
        try:
            design_check(experiment=experiment, arms=arms)
        except ValidationError as refusal:
            above = []
            for key, messages in refusal.message_dict.items():
                arm_field = _ARM_FIELD.fullmatch(key)
                if arm_field:
                    shown[int(arm_field[1])].add_error(arm_field[2], messages)
                elif key == "arms":
                    above += messages
                elif form is not None and key in form.fields:
                    form.add_error(key, messages)
                    above.append(f"See the error on {form.fields[key].label or key} above.")
                else:
                    above += [f"{key}: {message}" for message in messages]
            if above:
                raise forms.ValidationError(above) from refusal


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
    form = ExperimentForm
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
