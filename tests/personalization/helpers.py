"""The approval flow as tests drive it: objects created and approved through the services, as staff would."""

from __future__ import annotations

from personalization.services.approvals import (
    approvable_create,
    approval_decide,
    approval_submit,
    checklist_all_ticked,
)


def created(obj, people, *, arms: list[dict] | None = None):
    """The unsaved ``obj`` created by the marketer: version 1, in draft, audited."""
    marketer, _ = people
    return approvable_create(obj=obj, actor=marketer, arms=arms)


def approved(obj, people):
    """``obj`` submitted by the marketer and approved by the approver with every
    checklist item ticked: its current version goes live."""
    marketer, approver = people
    request = approval_submit(obj=obj, requester=marketer)
    approval_decide(request=request, decider=approver, approve=True, checklist=checklist_all_ticked(request))
    obj.refresh_from_db()
    return obj
