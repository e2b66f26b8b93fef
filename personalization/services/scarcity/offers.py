"""Offers' terms that really end, and their stock: the guards of every offer edit.

An ended offer cannot be relaunched on the same or better terms within the cooldown,
and a countdown that visitors saw never moves later (:func:`offer_terms_refusal`,
enforced by :func:`offer_edit`). Stock is the shop's: it changes only through
:func:`offer_stock_set` (one SKU) and :func:`offers_stock_set` (the stock feed), which
record when and by whom it was confirmed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from personalization.cue_text import format_ends_at
from personalization.models import ClaimLedger, Offer, ScarcityRule, TriggerType
from personalization.services.approvals import LIVE_DATA_FIELDS, ApprovalError, approvable_edit
from personalization.services.scarcity.config import offer_facts
from personalization.services.scarcity.evidence import scarcity_evidence_refresh


class OfferTermsRefused(ApprovalError):
    """An offer edit that would relaunch ended terms or restart a countdown; nothing changed."""

    code = "offer_terms_refused"


def _effective_price(price, discount) -> Decimal:
    return (Decimal(str(price)) * (1 - Decimal(str(discount)) / 100)).quantize(Decimal("0.01"))


def relaunch_cooldown_days(offer: Offer) -> int:
    """The longest cooldown any rule on the offer names; the setting when none does."""
    days = [
        max(rule.relaunch_cooldown_days, (rule.published or {}).get("relaunch_cooldown_days") or 0)
        for rule in ScarcityRule.objects.filter(offer=offer)
    ]
    return max(days, default=settings.SCARCITY_RELAUNCH_COOLDOWN_DAYS)


def offer_terms_refusal(*, offer: Offer, changes: Mapping, now: datetime | None = None) -> str | None:
    """Why an edit of ``offer`` is refused (None when it is allowed).

    - Relaunch: the approved offer's end has passed, less than the cooldown ago
      (:func:`relaunch_cooldown_days`), and the edit makes it run again (an end in the
      future, or none) at the same or a better price for the visitor (effective price
      after discount not higher, same currency).
    - Restart: the approved offer is still running, visitors were shown a countdown to
      its end, and the edit moves the end later or removes it.
    """
    if offer.published is None:
        return None
    now = now or timezone.now()
    old = offer_facts(offer)
    if old.ends_at is None:
        return None
    new = {
        name: changes.get(name, getattr(offer, name)) for name in ("price", "discount_percent", "currency", "ends_at")
    }
    new_end = new["ends_at"]
    if old.ends_at <= now:
        days = relaunch_cooldown_days(offer)
        until = old.ends_at + timedelta(days=days)
        runs_again = new_end is None or new_end > now
        old_price = _effective_price(old.price, old.discount_percent)
        new_price = _effective_price(new["price"], new["discount_percent"])
        if runs_again and now < until and new["currency"] == old.currency and new_price <= old_price:
            return (
                f"'{old.name}' ended at {format_ends_at(old.ends_at)}. Relaunching it on the same or better terms "
                f"({new_price} {old.currency}; it ended at {old_price} {old.currency}) is refused until "
                f"{format_ends_at(until)} ({days}-day cooldown): when a deadline passes, its terms really end."
            )
        return None
    postponed = new_end is None or new_end > old.ends_at
    if postponed and ClaimLedger.objects.filter(rule__offer=offer, ends_at=old.ends_at).exists():
        return (
            f"Visitors were shown a countdown to {format_ends_at(old.ends_at)} for '{old.name}'. That deadline "
            "cannot move later or go away: a countdown never restarts."
        )
    return None


@transaction.atomic
def offer_edit(*, offer: Offer, actor, changes: dict, now: datetime | None = None) -> Offer:
    """Edit an offer (:func:`approvable_edit`) unless :func:`offer_terms_refusal` refuses it.

    Refused: raises :class:`OfferTermsRefused`, nothing changes. Stock changes refresh
    the evidence of the offer's low-stock rules once committed, so a cue whose stock
    ran out stops at once, not at the next worker pass.
    """
    offer = Offer.objects.select_for_update().get(pk=offer.pk)
    refusal = offer_terms_refusal(offer=offer, changes=changes, now=now)
    if refusal is not None:
        raise OfferTermsRefused(refusal)
    edited = approvable_edit(obj=offer, actor=actor, changes=changes)
    if set(changes) & set(LIVE_DATA_FIELDS):
        offer_id = offer.pk
        transaction.on_commit(lambda: scarcity_evidence_refresh(offer_ids=[offer_id], triggers=[TriggerType.LOW_STOCK]))
    return edited


_UNCHANGED = object()


@transaction.atomic
def offer_stock_set(
    *,
    offer: Offer,
    stock_remaining: int | None,
    restock_at=_UNCHANGED,
    actor=None,
    confirmed_by: str = "",
    now: datetime | None = None,
) -> Offer:
    """Report the offer's real stock (and optionally its restock date), confirmed as of now.

    The stock is the shop's: nothing else here changes it (a purchase conversion naming
    the SKU does not). ``confirmed_by`` says who confirmed it (default: the actor's user
    name). A confirmation of unchanged stock only moves ``stock_updated_at`` - so a
    low-stock cue stays fresh while the shop keeps confirming - and writes no audit entry
    (a feed confirms every minute); a change is audited like any edit.
    """
    now = now or timezone.now()
    confirmed_by = confirmed_by or (actor.get_username() if actor is not None else "")
    locked = Offer.objects.select_for_update().get(pk=offer.pk)
    unchanged = locked.stock_remaining == stock_remaining and (
        restock_at is _UNCHANGED or locked.restock_at == restock_at
    )
    if unchanged:
        locked.stock_updated_at = now
        locked.stock_confirmed_by = confirmed_by
        locked.save(update_fields=["stock_updated_at", "stock_confirmed_by", "updated_at"])
        offer_id = locked.pk
        transaction.on_commit(lambda: scarcity_evidence_refresh(offer_ids=[offer_id], triggers=[TriggerType.LOW_STOCK]))
        return locked
    changes: dict = {"stock_remaining": stock_remaining, "stock_updated_at": now, "stock_confirmed_by": confirmed_by}
    if restock_at is not _UNCHANGED:
        changes["restock_at"] = restock_at
    return offer_edit(offer=locked, actor=actor, changes=changes, now=now)


@dataclass(frozen=True)
class StockReport:
    sku: str
    stock_remaining: int | None
    restock_at: object = _UNCHANGED  # a datetime, None (no restock due) or _UNCHANGED


class UnknownSkus(Exception):
    def __init__(self, skus: list[str]) -> None:
        super().__init__(f"No offer with SKU {', '.join(skus)} on this site.")
        self.skus = skus


@transaction.atomic
def offers_stock_set(
    *, site_id: int, reports: list[StockReport], confirmed_by: str, now: datetime | None = None
) -> list[Offer]:
    """The shop's stock feed: confirm many SKUs' stock as of now, all or nothing.

    Offers are locked in id order, so two feeds for overlapping SKUs never deadlock.
    Raises :class:`UnknownSkus` (nothing changed) when a SKU is not one of the site's offers.
    """
    now = now or timezone.now()
    skus = [report.sku for report in reports]
    locked = Offer.objects.select_for_update().filter(site_id=site_id, sku__in=skus).order_by("id")
    offers = {offer.sku: offer for offer in locked}
    unknown = [sku for sku in skus if sku not in offers]
    if unknown:
        raise UnknownSkus(unknown)
    return [
        offer_stock_set(
            offer=offers[report.sku],
            stock_remaining=report.stock_remaining,
            restock_at=report.restock_at,
            confirmed_by=confirmed_by,
            now=now,
        )
        for report in reports
    ]
