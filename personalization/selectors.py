"""Reads of the personalization domain that more than one caller needs.

Live personalization configuration, cached in process memory for the decision path:
what is loaded is only what was approved - a variant's *published* snapshot, never its
draft fields, and only experiments that are live. The cache reloads when the
``decisions`` version moves (approvals, optimizer reweights, pauses).

And the effectiveness of scarcity rules (:func:`scarcity_effectiveness`), for the
analytics API and reports.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q

from core import statistics
from core.config_cache import VersionedCache
from journeys.models import ConversionEvent, JourneySession, Site
from journeys.selectors import human_sessions, session_row_for
from personalization.models import (
    ClaimLedger,
    ContentVariant,
    Experiment,
    ExperimentArm,
    HoldoutMembership,
    Offer,
    ScarcityRule,
    Slot,
    Status,
)
from personalization.services.approvals import DECISIONS_NAMESPACE

# Personalization strategy by journey path and stage (PRODUCT.md section 3). Stages
# after decision use the "later" column.
STRATEGIES: dict[str, dict[str, str]] = {
    "mobile_tiktok_fast_track": {
        "awareness": "viral_hook_replication",
        "consideration": "swipe_gallery_optimization",
        "decision": "one_click_conversion",
        "later": "mobile_engagement_optimization",
    },
    "desktop_research_deep": {
        "awareness": "research_overview",
        "consideration": "comparison_table",
        "decision": "trust_signals",
        "later": "research_followup",
    },
    "returning_visitor_personalized": {
        "awareness": "personalized_offer",
        "consideration": "personalized_offer",
        "decision": "scarcity_offer",
        "later": "upsell",
    },
    "standard_conversion_funnel": {
        "awareness": "standard_personalization",
        "consideration": "standard_personalization",
        "decision": "standard_personalization",
        "later": "standard_personalization",
    },
}


def strategy_for(path: str, stage: str) -> str:
    table = STRATEGIES.get(path, STRATEGIES["standard_conversion_funnel"])
    return table.get(stage, table["later"])


@dataclass(frozen=True)
class OfferConfig:
    id: int
    sku: str
    name: str
    price: str
    currency: str
    discount_percent: str
    starts_at: str | None
    ends_at: str | None

    def as_dict(self) -> dict:
        return {
            "sku": self.sku,
            "name": self.name,
            "price": self.price,
            "currency": self.currency,
            "discount_percent": self.discount_percent,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
        }


@dataclass(frozen=True)
class VariantConfig:
    id: int
    key: str
    slot: str
    version: int
    payload: dict
    strategy: str
    is_default: bool
    paths: frozenset[str]
    stages: frozenset[str]
    devices: frozenset[str]
    personas: frozenset[str]
    returning: bool | None
    offer: OfferConfig | None

    @property
    def specificity(self) -> int:
        return sum(bool(x) for x in (self.paths, self.stages, self.devices, self.personas)) + (
            self.returning is not None
        )

    def matches(self, *, path: str, stage: str, device: str, persona: str, returning: bool) -> bool:
        return (
            (not self.paths or path in self.paths)
            and (not self.stages or stage in self.stages)
            and (not self.devices or device in self.devices)
            and (not self.personas or persona in self.personas)
            and (self.returning is None or self.returning == returning)
        )


@dataclass(frozen=True)
class ArmConfig:
    variant_id: int
    is_control: bool
    weight: float


@dataclass(frozen=True)
class ExperimentConfig:
    id: int
    key: str
    slot: str
    traffic_share: float
    allocation: str
    arms: tuple[ArmConfig, ...]

    @property
    def control(self) -> ArmConfig:
        return next(arm for arm in self.arms if arm.is_control)


@dataclass
class SiteConfig:
    slots: dict[str, list[VariantConfig]] = field(default_factory=lambda: defaultdict(list))
    variants: dict[int, VariantConfig] = field(default_factory=dict)
    experiments: dict[str, ExperimentConfig] = field(default_factory=dict)
    slot_keys: set[str] = field(default_factory=set)


def _offer_config(offer_id: int | None, offers: dict[int, Offer]) -> OfferConfig | None:
    offer = offers.get(offer_id) if offer_id else None
    if offer is None or not offer.serving:
        return None
    data = offer.published
    return OfferConfig(
        id=offer.pk,
        sku=data["sku"],
        name=data["name"],
        price=str(data["price"]),
        currency=data["currency"],
        discount_percent=str(data["discount_percent"]),
        starts_at=data.get("starts_at"),
        ends_at=data.get("ends_at"),
    )


def _load() -> dict[int, SiteConfig]:
    sites: dict[int, SiteConfig] = defaultdict(SiteConfig)
    for site_id, key in Slot.objects.values_list("site_id", "key"):
        sites[site_id].slot_keys.add(key)
    offers = {offer.pk: offer for offer in Offer.objects.exclude(published=None)}
    slot_keys = dict(Slot.objects.values_list("pk", "key"))
    for variant in ContentVariant.objects.exclude(published=None).exclude(status__in=[Status.PAUSED, Status.ARCHIVED]):
        data = variant.published
        config = VariantConfig(
            id=variant.pk,
            key=variant.key,
            slot=slot_keys[data["slot"]],
            version=variant.published_version,
            payload=data["payload"],
            strategy=data.get("strategy", ""),
            is_default=bool(data.get("is_default")),
            paths=frozenset(data.get("target_paths") or ()),
            stages=frozenset(data.get("target_stages") or ()),
            devices=frozenset(data.get("target_devices") or ()),
            personas=frozenset(data.get("target_personas") or ()),
            returning=data.get("target_returning"),
            offer=_offer_config(data.get("offer"), offers),
        )
        site = sites[variant.site_id]
        site.slots[config.slot].append(config)
        site.variants[config.id] = config
    for site in sites.values():
        for variants in site.slots.values():
            variants.sort(key=lambda v: (-v.specificity, v.id))
    arms = defaultdict(list)
    for arm in ExperimentArm.objects.filter(is_paused=False).order_by("-is_control", "id"):
        arms[arm.experiment_id].append(ArmConfig(arm.variant_id, arm.is_control, arm.weight))
    # A live experiment serves its approved snapshot even while an edit awaits approval;
    # its arms are locked once approved (weights move only through the optimizer).
    serving = Experiment.objects.exclude(published=None).exclude(status__in=[Status.PAUSED, Status.ARCHIVED])
    for experiment in serving.filter(ended_at=None):
        site = sites[experiment.site_id]
        approved = experiment.published
        experiment_arms = tuple(arm for arm in arms[experiment.pk] if arm.variant_id in site.variants)
        if not any(arm.is_control for arm in experiment_arms) or len(experiment_arms) < 2:
            continue  # an experiment whose variants are not all live does not run
        slot = slot_keys[approved["slot"]]
        site.experiments[slot] = ExperimentConfig(
            id=experiment.pk,
            key=experiment.key,
            slot=slot,
            traffic_share=approved["traffic_share"],
            allocation=approved["allocation"],
            arms=experiment_arms,
        )
    return dict(sites)


_config = VersionedCache(DECISIONS_NAMESPACE, _load)
_EMPTY = SiteConfig()


def live_config_for(site_id: int) -> SiteConfig:
    return _config.get().get(site_id, _EMPTY)


# The visitor's recorded arms, read with the session (:func:`decision_session_for`).
ASSIGNED_COLUMN = (
    "(SELECT array_agg(ARRAY[a.experiment_id, a.variant_id]) "
    "FROM personalization_assignment a WHERE a.visitor_id = s.visitor_id)"
)


def decision_session_for(site: Site, session_id: str) -> tuple[JourneySession, dict[int, int]] | None:
    """The session, its visitor, and the visitor's assignments (experiment id -> variant
    id): everything a decision reads from the database, in one query."""
    found = session_row_for(site, session_id, ASSIGNED_COLUMN, hot=True)
    if found is None:
        return None
    session, (assigned,) = found
    return session, dict(assigned or ())


def scarcity_effectiveness(
    *, site, since: datetime | None = None, until: datetime | None = None, goal: str = "purchase"
) -> list[dict]:
    """Per rule: impressions, and the conversion of exposed against holdout sessions.

    Sessions are those eligible for the rule (the ones recorded in
    :class:`HoldoutMembership` when first eligible in ``[since, until)``); a session
    converts when it has a ``goal`` conversion after it became eligible. The lift of
    exposed over holdout comes from :mod:`core.statistics`, the same functions as
    the experiments': relative lift with its delta-method and always-valid intervals,
    the Bayesian credible interval, and the chance that the cue beats the holdout.
    Sessions of crawlers and headless browsers are left out, as in the rollups.
    """
    claims = ClaimLedger.objects.filter(human_sessions(), rule__site=site)
    members = HoldoutMembership.objects.filter(human_sessions(), rule__site=site)
    if since is not None:
        claims = claims.filter(shown_at__gte=since)
        members = members.filter(assigned_at__gte=since)
    if until is not None:
        claims = claims.filter(shown_at__lt=until)
        members = members.filter(assigned_at__lt=until)
    impressions = {
        row["rule_id"]: row
        for row in claims.values("rule_id").annotate(
            impressions=Count("id"), sessions=Count("session_id", distinct=True)
        )
    }
    converted = ConversionEvent.objects.filter(
        session_id=OuterRef("session_id"), type=goal, converted_at__gte=OuterRef("assigned_at")
    )
    groups: dict[tuple[int, bool], tuple[int, int]] = {}
    rows = (
        members.annotate(converted=Exists(converted))
        .values("rule_id", "in_holdout")
        .annotate(sessions=Count("id"), conversions=Count("id", filter=Q(converted=True)))
    )
    for row in rows:
        groups[(row["rule_id"], row["in_holdout"])] = (row["sessions"], row["conversions"])
    out = []
    for rule in ScarcityRule.objects.filter(site=site).select_related("offer").order_by("key"):
        exposed = statistics.Arm(*groups.get((rule.pk, False), (0, 0)))
        holdout = statistics.Arm(*groups.get((rule.pk, True), (0, 0)))
        shown = impressions.get(rule.pk, {})
        out.append(
            {
                "rule": rule.key,
                "name": rule.name,
                "trigger_type": rule.trigger_type,
                "offer": rule.offer.sku,
                "status": rule.status,
                "holdout_share": (rule.published or {}).get("holdout_share", rule.holdout_share),
                "impressions": shown.get("impressions", 0),
                "sessions_shown": shown.get("sessions", 0),
                "exposed": {
                    "sessions": exposed.exposures,
                    "conversions": exposed.conversions,
                    "rate": exposed.rate,
                },
                "holdout": {
                    "sessions": holdout.exposures,
                    "conversions": holdout.conversions,
                    "rate": holdout.rate,
                },
                "lift": statistics.holdout_lift(holdout, exposed),
            }
        )
    return out
