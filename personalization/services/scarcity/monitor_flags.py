"""The scarcity monitor: flags for what looks like a fake, for a person to look at.

A low-stock cue shown while the stock never moved, and any countdown shown after its
end (both on the scarcity dashboard). One open flag per rule and kind.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, F
from django.utils import timezone

from personalization.models import ClaimLedger, MonitorFlag, MonitorFlagKind, ScarcityRule, TriggerType
from personalization.services.approvals import audit


def _flag_raise(*, rule_id: int, kind: str, details: dict, now: datetime) -> MonitorFlag:
    flag = MonitorFlag.objects.filter(rule_id=rule_id, kind=kind, resolved=False).first()
    if flag is None:
        return MonitorFlag.objects.create(rule_id=rule_id, kind=kind, details=details, raised_at=now, updated_at=now)
    flag.details = details
    flag.updated_at = now
    flag.save(update_fields=["details", "updated_at"])
    return flag


def scarcity_monitor(*, now: datetime | None = None, still_hours: float | None = None) -> list[MonitorFlag]:
    """Flag what the validator should have made impossible, or what looks like a fake.

    - ``stock_never_moved``: a low-stock rule whose cues were shown throughout the last
      ``still_hours`` (``SCARCITY_STOCK_STILL_HOURS``) - one before the period began and
      more within it - all claiming the same stock.
    - ``countdown_after_end``: any countdown cue shown at or after its own end.

    One open flag per rule and kind; a repeat updates its details. Returns the flags
    raised or updated.
    """
    now = now or timezone.now()
    period = timedelta(hours=settings.SCARCITY_STOCK_STILL_HOURS if still_hours is None else still_hours)
    start = now - period
    flags = []
    low_stock = ScarcityRule.objects.filter(trigger_type=TriggerType.LOW_STOCK)
    for rule in low_stock.filter(claims__shown_at__gte=start).distinct():
        before = ClaimLedger.objects.filter(rule=rule, shown_at__lt=start).order_by("-shown_at", "-id").first()
        if before is None:
            continue
        within = ClaimLedger.objects.filter(rule=rule, shown_at__gte=start)
        stocks = {before.evidence.get("stock_remaining")} | {
            item.get("stock_remaining") for item in within.values_list("evidence", flat=True)
        }
        if len(stocks) == 1:
            details = {
                "stock": stocks.pop(),
                "since": before.shown_at.isoformat(),
                "hours": period.total_seconds() / 3600,
                "cues_in_period": within.count(),
                "last_text": within.order_by("-shown_at", "-id").values_list("text", flat=True).first(),
            }
            flags.append(_flag_raise(rule_id=rule.pk, kind=MonitorFlagKind.STOCK_NEVER_MOVED, details=details, now=now))
    late = (
        ClaimLedger.objects.filter(ends_at__isnull=False, shown_at__gte=F("ends_at"))
        .values("rule_id")
        .annotate(count=Count("id"))
    )
    for row in late:
        first = (
            ClaimLedger.objects.filter(rule_id=row["rule_id"], ends_at__isnull=False, shown_at__gte=F("ends_at"))
            .order_by("shown_at", "id")
            .first()
        )
        details = {
            "count": row["count"],
            "first_shown_at": first.shown_at.isoformat(),
            "ends_at": first.ends_at.isoformat(),
            "session": first.session_id,
            "text": first.text,
        }
        flags.append(
            _flag_raise(rule_id=row["rule_id"], kind=MonitorFlagKind.COUNTDOWN_AFTER_END, details=details, now=now)
        )
    return flags


def monitor_flag_resolve(*, flag: MonitorFlag, actor, now: datetime | None = None) -> MonitorFlag:
    if flag.resolved:
        return flag
    flag.resolved = True
    flag.resolved_at = now or timezone.now()
    flag.save(update_fields=["resolved", "resolved_at"])
    audit(actor=actor, action="resolved", obj=flag, changes={"kind": flag.kind})
    return flag
