"""Pausing and resuming a scarcity rule: at once, in every process."""

from __future__ import annotations

from django.db import transaction

from core.config_cache import bump
from personalization.models import ScarcityRule, Status
from personalization.services.approvals import DECISIONS_NAMESPACE, audit


@transaction.atomic
def scarcity_rule_pause(*, rule: ScarcityRule, actor) -> ScarcityRule:
    """Stop showing a rule at once (every process reloads its rules after commit)."""
    rule = ScarcityRule.objects.select_for_update().get(pk=rule.pk)
    if rule.status == Status.PAUSED:
        return rule
    rule.status = Status.PAUSED
    rule.save(update_fields=["status", "updated_at"])
    bump(DECISIONS_NAMESPACE)
    audit(actor=actor, action="paused", obj=rule)
    return rule


@transaction.atomic
def scarcity_rule_resume(*, rule: ScarcityRule, actor) -> ScarcityRule:
    """Show a paused rule's approved version again; a rule never approved stays a draft."""
    rule = ScarcityRule.objects.select_for_update().get(pk=rule.pk)
    if rule.status != Status.PAUSED:
        return rule
    rule.status = Status.LIVE if rule.published_version == rule.version else Status.DRAFT
    rule.save(update_fields=["status", "updated_at"])
    bump(DECISIONS_NAMESPACE)
    audit(actor=actor, action="resumed", obj=rule)
    return rule
