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
from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from core import statistics
from core.config_cache import VersionedCache
from journeys.models import ConversionEvent, JourneySession, Site
from journeys.selectors import human_sessions, session_row_for
from personalization.models import (
    ClaimLedger,
    ContentVariant,
    Experiment,
    ExperimentArm,
    Exposure,
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
    """A running experiment. A mutually exclusive one holds the visitors whose slot hash
    is in ``[exclusion_start, exclusion_start + traffic_share)``; any other, those whose
    own traffic hash is under ``traffic_share``."""

    id: int
    key: str
    slot: str
    traffic_share: float
    allocation: str
    arms: tuple[ArmConfig, ...]
    exclusion_start: float | None = None

    @property
    def control(self) -> ArmConfig:
        return next(arm for arm in self.arms if arm.is_control)


@dataclass(frozen=True)
class WinnerConfig:
    """The variant a concluded experiment declared the winner: the slot's content for
    every visitor who is not in a running experiment on the slot."""

    experiment_key: str
    variant_id: int


@dataclass
class SiteConfig:
    slots: dict[str, list[VariantConfig]] = field(default_factory=lambda: defaultdict(list))
    variants: dict[int, VariantConfig] = field(default_factory=dict)
    # per slot, the running experiments (by id; one unless they are mutually exclusive)
    experiments: dict[str, tuple[ExperimentConfig, ...]] = field(default_factory=dict)
    winners: dict[str, WinnerConfig] = field(default_factory=dict)
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
    for experiment in Experiment.objects.running().order_by("pk"):
        site = sites[experiment.site_id]
        approved = experiment.published
        experiment_arms = tuple(arm for arm in arms[experiment.pk] if arm.variant_id in site.variants)
        if not any(arm.is_control for arm in experiment_arms) or len(experiment_arms) < 2:
            continue  # an experiment whose variants are not all live does not run
        slot = slot_keys[approved["slot"]]
        config = ExperimentConfig(
            id=experiment.pk,
            key=experiment.key,
            slot=slot,
            traffic_share=approved["traffic_share"],
            allocation=approved["allocation"],
            arms=experiment_arms,
            exclusion_start=experiment.exclusion_start if approved.get("mutually_exclusive") else None,
        )
        site.experiments[slot] = (*site.experiments.get(slot, ()), config)
    # The latest winner per slot (ascending, so a later one replaces an earlier one).
    # (archived with a winner: experiment_checks.serves_its_winner; a stop since ends it)
    concluded = Experiment.objects.exclude(published=None).filter(
        status=Status.ARCHIVED, winner__isnull=False, ended_at__isnull=False
    )
    for site_id, key, slot_id, variant_id in concluded.order_by("ended_at", "pk").values_list(
        "site_id", "key", "slot_id", "winner_id"
    ):
        site = sites[site_id]
        variant = site.variants.get(variant_id)
        if variant is not None and variant.slot == slot_keys[slot_id]:  # a winner that still serves there
            site.winners[variant.slot] = WinnerConfig(key, variant_id)
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
    the Bayesian credible interval, and the chance that the cue beats the holdout;
    ``p_value_holm`` adjusts the p-value by Holm over the site's rules.
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
    # The site's rules read together: Holm-adjusted p-values beside the raw ones.
    for row, adjusted in zip(out, statistics.holm([row["lift"]["p_value"] for row in out]), strict=True):
        row["lift"]["p_value_holm"] = adjusted
    return out


# --- power: how many visitors an experiment needs, and how long that takes -------------

POWER_WINDOW_DAYS = 14


@dataclass(frozen=True)
class Power:
    """The sample size an experiment needs per arm and how long the site's traffic takes to bring it.

    ``per_arm`` are exposed sessions per arm (what the optimizer counts) for the
    always-valid test behind the winner rule to detect a relative lift of ``mde`` in the
    primary goal's conversion rate with probability ``power`` at significance ``alpha``
    (two-sided, split over the treatments: :func:`core.statistics.sample_size_per_arm`).
    ``baseline`` is that rate among the slot's exposed sessions over the last
    ``window_days`` (the site's sessions when the slot has none yet); ``daily_sessions``
    those sessions per day. ``days`` is the time the smallest arm takes to reach
    ``per_arm``: per_arm / (daily sessions x traffic share x the smallest active arm's share).
    """

    goal: str
    mde: float
    alpha: float
    power: float
    arms: int
    source: str
    window_days: float
    sessions: int
    conversions: int
    traffic_share: float
    smallest_share: float
    baseline: float | None
    per_arm: int | None
    daily_sessions: float
    days: float | None

    def as_text(self) -> str:
        """The figure as a manager reads it, with its units and where its numbers come from."""
        basis = (
            f"{self.source}: {self.sessions:,} sessions in the last {self.window_days:.0f} days "
            f"({self.daily_sessions:,.0f} a day), {self.conversions:,} with a {self.goal} conversion"
        )
        if self.per_arm is None:
            return (
                f"Not computable yet: no {self.goal} conversions to take a baseline rate from ({basis}). "
                "The sample size needs the control's usual conversion rate."
            )
        detect = (
            f"{self.per_arm:,} exposed sessions per arm ({self.arms} arms) detect a +{self.mde:.0%} relative lift "
            f"in the {self.goal} rate (baseline {self.baseline:.2%}) with {self.power:.0%} power at "
            f"{1 - self.alpha:.0%} confidence (the always-valid test the winner rule uses)."
        )
        if self.days is None:
            return f"{detect} No sessions in the window, so no duration. Basis: {basis}."
        return (
            f"{detect} Expected duration: about {self.days:,.1f} days at traffic share {self.traffic_share:.0%} "
            f"with the smallest arm at {self.smallest_share:.0%} of it. Basis: {basis}."
        )


def experiment_power(
    *,
    experiment: Experiment,
    mde: float | None = None,
    alpha: float = 0.05,
    power: float | None = None,
    now: datetime | None = None,
) -> Power:
    """:class:`Power` of ``experiment`` as designed (its active arms, traffic share and primary goal).

    Three queries: the slot's exposed sessions in the window, the converted ones, and
    the first exposure (a slot younger than the window is averaged over its own age).
    """
    now = now or timezone.now()
    mde = statistics.DEFAULT_MDE if mde is None else mde
    power = statistics.DEFAULT_POWER if power is None else power
    since = now - timedelta(days=POWER_WINDOW_DAYS)
    arms = list(experiment.arms.filter(is_paused=False).values_list("weight", flat=True))
    total = sum(arms) or 1.0
    smallest = min(arms) / total if arms else 1.0
    exposures = Exposure.objects.filter(variant__slot_id=experiment.slot_id, exposed_at__gte=since, exposed_at__lt=now)
    converted = ConversionEvent.objects.filter(
        session_id=OuterRef("session_id"), type=experiment.primary_goal, converted_at__gte=OuterRef("exposed_at")
    )
    first = exposures.order_by("exposed_at").values_list("exposed_at", flat=True).first()
    if first is not None:
        source = f"slot {experiment.slot.key}'s exposed sessions"
        sessions = exposures.values("session_id").distinct().count()
        conversions = exposures.filter(Exists(converted)).values("session_id").distinct().count()
    else:
        source = f"the site's sessions (slot {experiment.slot.key} has not been shown yet)"
        site_sessions = JourneySession.objects.filter(
            site_id=experiment.site_id, started_at__gte=since, started_at__lt=now
        )
        first = site_sessions.order_by("started_at").values_list("started_at", flat=True).first()
        sessions = site_sessions.count()
        conversions = site_sessions.filter(
            Exists(ConversionEvent.objects.filter(session_id=OuterRef("pk"), type=experiment.primary_goal))
        ).count()
    days = POWER_WINDOW_DAYS if first is None else min(POWER_WINDOW_DAYS, max((now - first).total_seconds() / 86400, 1))
    baseline = conversions / sessions if sessions else None
    per_arm = (
        statistics.sample_size_per_arm(baseline, mde, alpha=alpha, power=power, arms=max(len(arms), 2))
        if baseline
        else None
    )
    daily = sessions / days
    return Power(
        goal=experiment.primary_goal,
        mde=mde,
        alpha=alpha,
        power=power,
        arms=max(len(arms), 2),
        source=source,
        window_days=days,
        sessions=sessions,
        conversions=conversions,
        traffic_share=experiment.traffic_share,
        smallest_share=smallest,
        baseline=baseline,
        per_arm=per_arm,
        daily_sessions=daily,
        # the smallest arm's own flow of sessions, as the one arm that must reach per_arm last
        days=statistics.expected_duration_days(
            per_arm, arms=1, daily_units=daily, share=experiment.traffic_share * smallest
        ),
    )
