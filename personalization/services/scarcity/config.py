"""A scarcity rule's approved configuration, cached in process memory.

:class:`RuleConfig` is a rule's *published* snapshot with its trigger's defaults
(:data:`DEFAULTS`) applied, and :class:`OfferFacts` its offer's approved terms. The
live rules of every site are loaded once per ``decisions`` version
(:func:`live_rules_for`): an approval, a pause or a resume moves it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.config_cache import VersionedCache
from personalization.models import CueTiming, Offer, ScarcityRule, Status, TriggerType
from personalization.services.approvals import DECISIONS_NAMESPACE

# Defaults of a rule's empty threshold / window, per trigger (PRODUCT.md section 6).
DEFAULTS: dict[str, dict[str, int | None]] = {
    TriggerType.SOCIAL_PROOF_VIEWS: {"threshold": 10, "window_minutes": 60},
    TriggerType.SOCIAL_PROOF_PURCHASES: {"threshold": 1, "window_minutes": None},
    TriggerType.LOW_STOCK: {"threshold": 5, "window_minutes": 24 * 60},
    TriggerType.OFFER_DEADLINE: {"threshold": None, "window_minutes": 24 * 60},
    TriggerType.FLASH_SALE: {"threshold": None, "window_minutes": 24 * 60},
    TriggerType.EXCLUSIVITY: {"threshold": None, "window_minutes": None},
}


@dataclass(frozen=True)
class OfferFacts:
    """An offer's approved terms, as its published snapshot says."""

    id: int
    sku: str
    name: str
    serving: bool
    price: Decimal
    currency: str
    discount_percent: Decimal
    starts_at: datetime | None
    ends_at: datetime | None


@dataclass(frozen=True)
class RuleConfig:
    """A rule's approved version with its trigger's defaults applied."""

    id: int
    key: str
    site_id: int
    version: int
    trigger_type: str
    offer: OfferFacts | None
    threshold: int | None
    window_minutes: int | None
    minimum_count: int
    staleness_seconds: int
    template: str
    stages: frozenset[str]
    paths: frozenset[str]
    personas: frozenset[str]
    min_sensitivity: float
    intensity: str
    timing: str
    holdout_share: float


def as_datetime(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def as_iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def offer_facts(offer: Offer | None) -> OfferFacts | None:
    if offer is None or offer.published is None:
        return None
    data = offer.published
    return OfferFacts(
        id=offer.pk,
        sku=data["sku"],
        name=data["name"],
        serving=offer.serving,
        price=Decimal(str(data["price"])),
        currency=data["currency"],
        discount_percent=Decimal(str(data["discount_percent"])),
        starts_at=as_datetime(data.get("starts_at")),
        ends_at=as_datetime(data.get("ends_at")),
    )


def rule_config(data: Mapping, *, rule_id: int, site_id: int, version: int, offer: OfferFacts | None) -> RuleConfig:
    """A :class:`RuleConfig` from a snapshot of a rule (its published one, or a draft's)."""
    trigger = data["trigger_type"]
    defaults = DEFAULTS[trigger]
    threshold = data.get("threshold")
    window = data.get("window_minutes")
    return RuleConfig(
        id=rule_id,
        key=data["key"],
        site_id=site_id,
        version=version,
        trigger_type=trigger,
        offer=offer,
        threshold=defaults["threshold"] if threshold is None else threshold,
        window_minutes=defaults["window_minutes"] if window is None else window,
        minimum_count=data.get("minimum_count") or 1,
        staleness_seconds=data["staleness_seconds"],
        template=data["message_template"],
        stages=frozenset(data.get("target_stages") or ()),
        paths=frozenset(data.get("target_paths") or ()),
        personas=frozenset(data.get("target_personas") or ()),
        min_sensitivity=float(data.get("min_scarcity_sensitivity") or 0.0),
        intensity=data.get("intensity") or "medium",
        timing=data.get("timing") or CueTiming.IMMEDIATE,
        holdout_share=float(data.get("holdout_share") or 0.0),
    )


def live_rules_load() -> dict[int, tuple[RuleConfig, ...]]:
    rules = list(ScarcityRule.objects.exclude(published=None).exclude(status__in=[Status.PAUSED, Status.ARCHIVED]))
    offers = {offer.pk: offer for offer in Offer.objects.filter(pk__in={rule.published["offer"] for rule in rules})}
    by_site: dict[int, list[RuleConfig]] = defaultdict(list)
    for rule in rules:
        config = rule_config(
            rule.published,
            rule_id=rule.pk,
            site_id=rule.site_id,
            version=rule.published_version,
            offer=offer_facts(offers.get(rule.published["offer"])),
        )
        by_site[rule.site_id].append(config)
    return {site_id: tuple(sorted(items, key=lambda r: r.id)) for site_id, items in by_site.items()}


live_rules = VersionedCache(DECISIONS_NAMESPACE, live_rules_load)


def live_rules_for(site_id: int) -> tuple[RuleConfig, ...]:
    return live_rules.get().get(site_id, ())
