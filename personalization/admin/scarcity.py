"""Scarcity: rules with a live preview, the claims ledger, the monitor's flags, evidence and holdouts."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from core.admin import ReadOnlyAdmin
from personalization.admin.base import APPROVAL_FIELDS, ApprovableAdmin, pretty_json
from personalization.models import ClaimLedger, HoldoutMembership, MonitorFlag, RuleEvidence, ScarcityRule
from personalization.services.scarcity.claims import rules_preview
from personalization.services.scarcity.monitor_flags import monitor_flag_resolve
from personalization.services.scarcity.rules import scarcity_rule_pause, scarcity_rule_resume


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
    while_draft_waits = "keeps showing its approved text"

    def get_changelist_instance(self, request):
        # The "Now" column previews every rule of the page from one evidence read and
        # two queries (rules_preview), not a cache read and two queries per row.
        changelist = super().get_changelist_instance(request)
        rules = list(changelist.result_list)  # evaluated once: the page renders these rows
        previews = rules_preview(rules=rules)
        for rule in rules:
            rule.preview = previews[rule.pk]
        return changelist

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
        lines = rules_preview(rules=[rule])[rule.pk]
        if not lines:
            return "-"
        return format_html_join("", "<p>{}</p>", ((line,) for line in lines))

    @admin.display(description="Now")
    def would_show(self, rule):
        lines = rule.preview
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
        return format_html("<pre>{}</pre>", pretty_json(claim.evidence))


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
