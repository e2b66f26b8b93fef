"""Staff users, the approval flow as tests drive it (through the services), and the offer admin's form."""

from __future__ import annotations

from django.contrib.auth.models import Group

from personalization.services.approvals import (
    approvable_create,
    approval_decide,
    approval_submit,
    checklist_all_ticked,
)


def staff(django_user_model, username: str, *groups: str, **fields):
    """A staff user in ``groups`` (Marketers, Approvers, Analysts), password ``pw-<username>-12345``."""
    user = django_user_model.objects.create_user(username, password=f"pw-{username}-12345", is_staff=True, **fields)
    for group in groups:
        user.groups.add(Group.objects.get(name=group))
    return user


def make_people(django_user_model) -> tuple:
    """(marketer, approver): ``mia`` in Marketers submits, ``ada`` in Approvers approves."""
    return staff(django_user_model, "mia", "Marketers"), staff(django_user_model, "ada", "Approvers")


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


def offer_admin_form(offer, **overrides) -> dict:
    """The offer admin's add or change form holding ``offer``'s fields (saved or not), with ``overrides``."""

    def split(moment):
        return (moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M:%S")) if moment else ("", "")

    starts, ends = split(offer.starts_at), split(offer.ends_at)
    data = {
        "site": offer.site_id,
        "name": offer.name,
        "sku": offer.sku,
        "price": str(offer.price),
        "currency": offer.currency,
        "discount_percent": str(offer.discount_percent),
        "starts_at_0": starts[0],
        "starts_at_1": starts[1],
        "ends_at_0": ends[0],
        "ends_at_1": ends[1],
        "stock_remaining": "" if offer.stock_remaining is None else offer.stock_remaining,
        "restock_at_0": "",
        "restock_at_1": "",
        "_save": "Save",
    }
    return data | overrides
