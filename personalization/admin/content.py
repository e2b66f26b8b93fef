"""Slots, content variants, and experiments with their arms."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core import statistics
from personalization.admin.base import APPROVAL_FIELDS, ApprovableAdmin, refusal_text
from personalization.models import ContentVariant, Experiment, ExperimentArm, ProposalKind, Slot
from personalization.selectors import experiment_power
from personalization.services import experiment_checks
from personalization.services.approvals import ApprovalError, approvable_create, experiment_edit
from personalization.services.experiment_actions import DESCRIPTIONS, experiment_action_request


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
            # the arms are frozen (shown read-only): check the stored ones with the new fields
            shown, arms = [], experiment_checks.arms_of(experiment)
        else:
            shown = [each for each in self.forms if each.cleaned_data and not self._should_delete_form(each)]
            arms = [
                {name: each.cleaned_data[name] for name in ("is_control", "weight", "is_paused")}
                | {"variant": each.cleaned_data["variant"].pk}
                for each in shown
            ]
        try:
            experiment_checks.design_check(experiment=experiment, arms=arms)
        except ValidationError as refusal:
            above = []
            for key, errors in refusal.message_dict.items():
                arm_field = _ARM_FIELD.fullmatch(key)
                if arm_field and shown:
                    shown[int(arm_field[1])].add_error(arm_field[2], errors)
                elif arm_field:
                    above += [f"Arm {int(arm_field[1]) + 1}: {error}" for error in errors]
                elif key == "arms":
                    above += errors
                elif form is not None and key in form.fields:
                    form.add_error(key, errors)
                    above.append(f"See the error on {form.fields[key].label or key} above.")
                else:
                    above += [f"{key}: {error}" for error in errors]
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


class ActionRequestForm(forms.Form):
    """A person's request to change a running experiment; the rules are
    ``experiment_action_request``'s, shown on the field they name."""

    kind = forms.ChoiceField(label="Action", choices=list(DESCRIPTIONS.items()))
    variant = forms.ModelChoiceField(
        queryset=ContentVariant.objects.none(),
        required=False,
        help_text="The arm to declare the winner, pause or resume.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), required=False)

    def __init__(self, *args, experiment: Experiment, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["variant"].queryset = ContentVariant.objects.filter(arms__experiment=experiment).order_by(
            "-arms__is_control", "arms__id"
        )
        self.fields["variant"].label_from_instance = lambda variant: f"{variant.key} ({variant.name})"


@admin.register(Experiment)
class ExperimentAdmin(ApprovableAdmin):
    form = ExperimentForm
    change_form_template = "admin/personalization/experiment/change_form.html"
    request_template = "admin/personalization/experiment/request_action.html"
    list_display = ["key", "name", "site", "slot", "allocation", "status", "version", "published_version", "started_at"]
    list_filter = ["site", "status", "allocation"]
    search_fields = ["key", "name"]
    list_select_related = ["site", "slot"]
    readonly_fields = [*APPROVAL_FIELDS, "started_at", "ended_at", "winner", "exclusion_start", "power"]
    inlines = [ExperimentArmInline]

    def get_fieldsets(self, request, obj=None):
        main, approval = super().get_fieldsets(request, obj)
        main[1]["fields"] = [name for name in main[1]["fields"] if name != "power"]
        return [main, ("Power", {"fields": ["power"]}), approval]

    @admin.display(description="Sample size and duration")
    def power(self, obj):
        if obj is None or obj.pk is None:
            return (
                "Shown once the experiment is saved with its slot, arms and primary goal: the sessions each arm "
                f"needs to detect a +{statistics.DEFAULT_MDE:.0%} relative lift, and how long this site's traffic "
                "takes to bring them."
            )
        return experiment_power(experiment=obj).as_text()

    def create(self, request, *, obj, formsets):
        experiment = approvable_create(obj=obj, actor=request.user, arms=arms_of(formsets))
        self.message_user(request, f"Power of {experiment}: {experiment_power(experiment=experiment).as_text()}")
        self.warn_about_the_slot(request, experiment)
        return experiment

    def edit(self, request, *, obj, changes, formsets):
        experiment = experiment_edit(experiment=obj, actor=request.user, changes=changes, arms=arms_of(formsets))
        self.warn_about_the_slot(request, experiment)
        return experiment

    def warn_about_the_slot(self, request, experiment: Experiment) -> None:
        """A draft is saved even when another experiment runs on its slot (that one may end
        first), but its author learns now what submitting it would meet."""
        try:
            experiment_checks.slot_place(experiment=experiment)
        except ValidationError as refusal:
            self.message_user(
                request,
                f"{experiment} is saved, but would be refused on submit as things are: {refusal_text(refusal)}",
                messages.WARNING,
            )

    def get_urls(self):
        request_view = self.admin_site.admin_view(self.request_action_view)
        return [
            path("<path:object_id>/request/", request_view, name="personalization_experiment_request"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        allowed = obj is not None and self.has_change_permission(request, obj)
        if allowed and Experiment.objects.running().filter(pk=obj.pk).exists():
            context["action_buttons"] = [
                (ProposalKind.STOP, "Request stop"),
                (ProposalKind.DECLARE_WINNER, "Declare a winner"),
                (ProposalKind.PAUSE_VARIANT, "Pause an arm"),
                (ProposalKind.RESUME_VARIANT, "Resume an arm"),
            ]
        elif allowed and experiment_checks.serves_its_winner(obj):
            context["action_buttons"] = [(ProposalKind.STOP, "Stop serving the winner")]
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def request_action_view(self, request, object_id):
        """Ask approvers to stop the experiment, declare a winner, pause or resume an arm."""
        experiment = self.get_object(request, unquote(object_id))
        if experiment is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, experiment):
            raise PermissionDenied
        initial = {"kind": request.GET.get("kind", ProposalKind.STOP)}
        form = ActionRequestForm(request.POST or None, initial=initial, experiment=experiment)
        if form.is_bound and form.is_valid():
            try:
                approval = experiment_action_request(experiment=experiment, requester=request.user, **form.cleaned_data)
            except ValidationError as refusal:
                for field, errors in refusal.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            except ApprovalError as refusal:
                form.add_error(None, str(refusal))
            else:
                self.message_user(
                    request,
                    f"Requested: {DESCRIPTIONS[form.cleaned_data['kind']].lower()} for {experiment}. "
                    "It takes effect once an approver approves it.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:personalization_approvalrequest_change", args=[approval.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Request a change to {experiment}",
            "experiment": experiment,
            "arms": experiment.arms.select_related("variant"),
            "form": form,
            "is_popup": False,
            "to_field": None,
        }
        return TemplateResponse(request, self.request_template, context)
