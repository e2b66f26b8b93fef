"""Scarcity and urgency cues that can only tell the truth (PRODUCT.md section 6).

Three parts, each with one job:

1. **Evidence** (:func:`scarcity_evidence_refresh`, a worker every minute). For every
   live rule it measures, from this site's own data only, the number its claim rests
   on, and stores it with its measurement time in PostgreSQL (:class:`RuleEvidence`,
   the latest per rule) and in Redis (one key per rule). What "viewed the offer" and
   "purchased it today" mean:

   - *viewed*: a distinct session that, inside the window, was shown a live variant
     carrying the offer (an :class:`Exposure`, recorded by the decision engine itself)
     or sent a touchpoint whose ``interaction_data.sku`` is the offer's SKU (received
     inside the window, by server time). The visitor's own session may be among them.
   - *purchased today*: ``purchase`` conversions whose ``product.sku`` is the offer's
     SKU, since midnight (``TIME_ZONE``), counted as orders.
   - stock: the offer's ``stock_remaining`` and ``restock_at``, measured when the shop
     last reported it (``stock_updated_at``), not when the worker copied it.
   - deadline, flash sale: the offer's approved ``starts_at``/``ends_at``/discount.
   - exclusivity: whether every live variant that carries the offer is targeted (none
     is a default, each has at least one targeting condition): the offer then really
     reaches only a restricted audience, and the visitor must be in it.

2. **Validation at display time** (:func:`cue_validate`, a pure function of the rule's
   approved configuration, the cached evidence, the session's facts and ``now``). The
   decision path (:func:`cues_eligible`) reads rules and evidence from in-process caches
   (versioned in Redis, refreshed within 0.5 s of a change) and never runs a counting query. A
   cue shows only when all of these hold:

   - the rule is live and approved (its *published* snapshot; the text is that
     version's template), its offer is live, started and not ended;
   - the session's stage is inside the rule's timing (immediate: awareness to
     decision; consideration: consideration and decision; decision: decision only -
     never after a conversion) and the rule's target stages, paths and personas
     (personas only with personalization consent);
   - the visitor's scarcity sensitivity (:func:`sensitivity_for`) is at least the
     rule's minimum and the floor of its intensity (:data:`INTENSITY_FLOOR`);
   - the evidence is fresh: both its measurement and its copy are at most the rule's
     ``staleness_seconds`` old, and it is about the rule's current offer and window;
   - the claim is true (:func:`claim_check`): social proof count >= max(threshold,
     minimum count), stated with its window; ``0 < stock <= threshold`` with no
     restock due within the window; the deadline in the future and within the window;
     a flash sale is an approved (discounted) offer with a start and an end at most
     the window apart, running now; exclusivity as above;
   - the session is not in the rule's holdout: ``sha256(rule id, session id)`` under
     the holdout share decides once, the answer is recorded
     (:class:`HoldoutMembership`) and is sticky from then on.

   Every cue shown is written to the claims ledger with its exact text and evidence.

3. **Guards and learning**: an ended offer cannot be relaunched on the same or better
   terms within the cooldown, and a countdown that visitors saw never moves later
   (:func:`offer_terms_refusal`, enforced by :func:`offer_edit`); a monitor flags
   low-stock cues shown while the stock never moved and countdowns shown after their
   end (:func:`scarcity_monitor`); the visitor's sensitivity is learned from how they
   responded to cues (:func:`scarcity_sensitivity_learn`).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, F, Min, OuterRef, Q
from django.utils import timezone

from analytics import monitor, statistics
from journeys.config_cache import VersionedCache, bump
from journeys.models import ConversionEvent, JourneyPath, JourneySession, Stage, Touchpoint, Visitor
from personalization.cue_text import format_ends_at, render, window_phrase
from personalization.models import (
    ClaimLedger,
    ContentVariant,
    CueTiming,
    Exposure,
    HoldoutMembership,
    MonitorFlag,
    MonitorFlagKind,
    Offer,
    RuleEvidence,
    ScarcityRule,
    Status,
    TriggerType,
)
from personalization.selectors import VariantConfig, live_config_for
from personalization.services.approvals import (
    DECISIONS_NAMESPACE,
    LIVE_DATA_FIELDS,
    ApprovalError,
    approvable_edit,
    audit,
    snapshot,
)

# Defaults of a rule's empty threshold / window, per trigger (PRODUCT.md section 6).
DEFAULTS: dict[str, dict[str, int | None]] = {
    TriggerType.SOCIAL_PROOF_VIEWS: {"threshold": 10, "window_minutes": 60},
    TriggerType.SOCIAL_PROOF_PURCHASES: {"threshold": 1, "window_minutes": None},
    TriggerType.LOW_STOCK: {"threshold": 5, "window_minutes": 24 * 60},
    TriggerType.OFFER_DEADLINE: {"threshold": None, "window_minutes": 24 * 60},
    TriggerType.FLASH_SALE: {"threshold": None, "window_minutes": 24 * 60},
    TriggerType.EXCLUSIVITY: {"threshold": None, "window_minutes": None},
}

# The stages a cue may appear in, by the rule's timing. Nothing after ``decision``: a
# visitor who converted is not pressed any more.
TIMING_STAGES = {
    CueTiming.IMMEDIATE: frozenset({Stage.AWARENESS, Stage.CONSIDERATION, Stage.DECISION}),
    CueTiming.CONSIDERATION: frozenset({Stage.CONSIDERATION, Stage.DECISION}),
    CueTiming.DECISION: frozenset({Stage.DECISION}),
}

# Sensitivity gates intensity: a cue of this intensity needs at least this sensitivity
# (besides the rule's own minimum). The default 0.5 admits low and medium cues.
INTENSITY_FLOOR = {"low": 0.0, "medium": 0.3, "high": 0.6}

# Visitor scarcity sensitivity (see sensitivity_for and scarcity_sensitivity_learn).
DEFAULT_SENSITIVITY = 0.5
LEARNING_RATE = 0.2
RESPONSE_HOURS = 24
# Persona boosts from the original notes: time-limited offers are aimed at
# TechEarlyAdopters and StudentHustlers, and a fast decision maker (here: a session on
# the mobile fast track) gets +0.2.
PERSONA_BOOSTS = {"TechEarlyAdopter": 0.1, "StudentHustler": 0.1}
FAST_DECISION_PATHS = {JourneyPath.MOBILE_TIKTOK_FAST_TRACK: 0.2}

EVIDENCE_KEY = "scarcity-evidence:{}"
EVIDENCE_NAMESPACE = "scarcity-evidence"
EVIDENCE_TTL = 3600  # seconds; evidence this old is stale under any rule's bound anyway
CLOCK_SKEW = timedelta(seconds=5)  # evidence "measured" further in the future is refused


# --- configuration (what was approved) -------------------------------------------------


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


def _dt(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


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
        starts_at=_dt(data.get("starts_at")),
        ends_at=_dt(data.get("ends_at")),
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


def _load_rules() -> dict[int, tuple[RuleConfig, ...]]:
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


_rules = VersionedCache(DECISIONS_NAMESPACE, _load_rules)


def live_rules_for(site_id: int) -> tuple[RuleConfig, ...]:
    return _rules.get().get(site_id, ())


# --- evidence (the worker) ----------------------------------------------------------------


def today_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in ``TIME_ZONE``: where "today" starts."""
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def viewers_count(*, offer_id: int, site_id: int, sku: str, since: datetime, until: datetime) -> int:
    """Distinct sessions that viewed the offer in ``[since, until]`` (module docstring)."""
    exposed = Exposure.objects.filter(
        variant__published__offer=offer_id, exposed_at__gte=since, exposed_at__lte=until
    ).values("session_id")
    touched = Touchpoint.objects.filter(
        site_id=site_id, received_at__gte=since, received_at__lte=until, interaction_data__sku=sku
    ).values("session_id")
    return exposed.union(touched).count()


def purchases_count(*, site_id: int, sku: str, since: datetime, until: datetime) -> int:
    return ConversionEvent.objects.filter(
        site_id=site_id, type="purchase", product__sku=sku, converted_at__gte=since, converted_at__lte=until
    ).count()


def _audience_of(offer_id: int, site_id: int) -> tuple[bool, list[int]]:
    """(restricted, ids) of the live variants carrying the offer."""
    variants = (
        ContentVariant.objects.filter(site_id=site_id, published__offer=offer_id)
        .exclude(status__in=[Status.PAUSED, Status.ARCHIVED])
        .order_by("id")
    )
    ids, restricted = [], True
    for variant in variants:
        data = variant.published
        targeted = any(
            data.get(name) for name in ("target_paths", "target_stages", "target_devices", "target_personas")
        ) or (data.get("target_returning") is not None)
        restricted = restricted and targeted and not data.get("is_default")
        ids.append(variant.pk)
    return bool(ids) and restricted, ids


def evidence_measure(rule: RuleConfig, offer: Offer | None, *, now: datetime) -> dict:
    """The evidence document of one rule, measured now from the database."""
    values: dict = {}
    measured_at: datetime | None = now
    trigger = rule.trigger_type
    if offer is None:
        measured_at = None
    elif trigger == TriggerType.SOCIAL_PROOF_VIEWS:
        since = now - timedelta(minutes=rule.window_minutes)
        values = {
            "count": viewers_count(offer_id=offer.pk, site_id=offer.site_id, sku=offer.sku, since=since, until=now),
            "window_minutes": rule.window_minutes,
            "since": since.isoformat(),
        }
    elif trigger == TriggerType.SOCIAL_PROOF_PURCHASES:
        since = today_start(now)
        values = {
            "count": purchases_count(site_id=offer.site_id, sku=offer.sku, since=since, until=now),
            "since": since.isoformat(),
        }
    elif trigger == TriggerType.LOW_STOCK:
        values = {"stock_remaining": offer.stock_remaining, "restock_at": _iso(offer.restock_at)}
        measured_at = offer.stock_updated_at
    elif trigger in (TriggerType.OFFER_DEADLINE, TriggerType.FLASH_SALE):
        facts = offer_facts(offer)
        values = {
            "starts_at": _iso(facts.starts_at) if facts else None,
            "ends_at": _iso(facts.ends_at) if facts else None,
            "discount_percent": str(facts.discount_percent) if facts else None,
        }
    elif trigger == TriggerType.EXCLUSIVITY:
        restricted, ids = _audience_of(offer.pk, offer.site_id)
        values = {"restricted": restricted, "variants": ids}
    return {
        "rule": rule.id,
        "rule_version": rule.version,
        "offer": offer.pk if offer is not None else None,
        "values": values,
        "measured_at": _iso(measured_at),
        "computed_at": now.isoformat(),
    }


def scarcity_evidence_refresh(
    *,
    site_id: int | None = None,
    offer_ids: Iterable[int] | None = None,
    triggers: Iterable[str] | None = None,
    now: datetime | None = None,
) -> int:
    """Measure the evidence of every live rule (optionally of a site, offers or triggers).

    Writes the latest evidence per rule to PostgreSQL, then the same documents to Redis,
    one key per rule. Idempotent: a second run overwrites with newer numbers. Returns
    how many rules were measured.
    """
    now = now or timezone.now()
    rules = [rule for site_rules in _load_rules().values() for rule in site_rules]
    if site_id is not None:
        rules = [rule for rule in rules if rule.site_id == site_id]
    if offer_ids is not None:
        wanted = set(offer_ids)
        rules = [rule for rule in rules if rule.offer is not None and rule.offer.id in wanted]
    if triggers is not None:
        kinds = set(triggers)
        rules = [rule for rule in rules if rule.trigger_type in kinds]
    if not rules:
        return 0
    offers = Offer.objects.in_bulk({rule.offer.id for rule in rules if rule.offer is not None})
    docs = {
        rule.id: evidence_measure(rule, offers.get(rule.offer.id) if rule.offer else None, now=now) for rule in rules
    }
    RuleEvidence.objects.bulk_create(
        [
            RuleEvidence(
                rule_id=rule_id,
                rule_version=doc["rule_version"],
                values=doc["values"],
                measured_at=_dt(doc["measured_at"]),
                computed_at=now,
            )
            for rule_id, doc in docs.items()
        ],
        update_conflicts=True,
        unique_fields=["rule"],
        update_fields=["rule_version", "values", "measured_at", "computed_at"],
    )
    cache.set_many({EVIDENCE_KEY.format(rule_id): doc for rule_id, doc in docs.items()}, timeout=EVIDENCE_TTL)
    _evidence.clear()
    bump(EVIDENCE_NAMESPACE)
    return len(docs)


def evidence_read(rule_ids: Iterable[int]) -> dict[int, dict]:
    """The cached evidence of the rules: one Redis round trip, no database."""
    keys = {EVIDENCE_KEY.format(rule_id): rule_id for rule_id in rule_ids}
    found = cache.get_many(list(keys))
    return {keys[key]: doc for key, doc in found.items()}


def _load_evidence() -> dict[int, dict]:
    return evidence_read(rule.id for rules in _rules.get().values() for rule in rules)


# Every live rule's evidence, kept in process memory: a decision reads no Redis key for
# it. Each refresh moves the version (and empties this process's copy at once), so any
# process serves the new numbers within the version check interval (0.5 s), the same
# bound as for a rule being paused. A copy that grows old cannot make a false claim: the
# validator refuses evidence older than the rule's staleness bound.
_evidence = VersionedCache(EVIDENCE_NAMESPACE, _load_evidence)


def evidence_latest(rule: ScarcityRule) -> dict | None:
    """The cached evidence, else the stored copy (for the admin preview)."""
    doc = evidence_read([rule.pk]).get(rule.pk)
    if doc is not None:
        return doc
    stored = RuleEvidence.objects.filter(rule=rule).first()
    if stored is None:
        return None
    return {
        "rule": rule.pk,
        "rule_version": stored.rule_version,
        "offer": rule.published["offer"] if rule.published else rule.offer_id,
        "values": stored.values,
        "measured_at": _iso(stored.measured_at),
        "computed_at": stored.computed_at.isoformat(),
    }


# --- validation at display time (pure) ----------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """The facts of a session that a cue may depend on."""

    session_id: str
    stage: str
    path: str
    persona: str
    device: str
    returning: bool
    consent: bool
    sensitivity: float


@dataclass(frozen=True)
class Claim:
    """Whether a rule's claim holds on its evidence: the text and why, or why not."""

    true: bool
    reason: str
    text: str = ""
    values: dict = field(default_factory=dict)
    measured_at: datetime | None = None
    computed_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    rule: RuleConfig
    eligible: bool  # targeted and true: the session is in the rule's population
    shown: bool  # eligible and not in the (hashed) holdout
    reason: str
    claim: Claim | None = None
    bucket: float | None = None


def sensitivity_for(*, consent: bool, learned: float, persona: str, path: str) -> float:
    """The visitor's scarcity sensitivity in [0, 1].

    Without personalization consent: :data:`DEFAULT_SENSITIVITY`, nothing behavioural.
    With it: the learned value (:func:`scarcity_sensitivity_learn`) plus the persona
    boosts of the notes (:data:`PERSONA_BOOSTS`, :data:`FAST_DECISION_PATHS`), capped at 1.
    """
    if not consent:
        return DEFAULT_SENSITIVITY
    return min(1.0, learned + PERSONA_BOOSTS.get(persona, 0.0) + FAST_DECISION_PATHS.get(path, 0.0))


def viewer_for(session: JourneySession) -> Viewer:
    visitor = session.visitor
    consent = bool(visitor.consent_personalization)
    return Viewer(
        session_id=session.session_id,
        stage=session.current_stage,
        path=session.journey_path,
        persona=session.persona_type if consent else "",
        device=session.device_type,
        returning=session.returning,
        consent=consent,
        sensitivity=sensitivity_for(
            consent=consent,
            learned=visitor.scarcity_sensitivity,
            persona=session.persona_type,
            path=session.journey_path,
        ),
    )


def holdout_bucket(rule_id: int, session_id: str) -> float:
    """A uniform number in [0, 1) from the rule and the session: the same in every process."""
    digest = hashlib.sha256(f"scarcity-holdout:{rule_id}:{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def eligibility_refusal(rule: RuleConfig, viewer: Viewer) -> str | None:
    """Why the rule does not target this session (None when it does)."""
    if viewer.stage not in TIMING_STAGES[rule.timing]:
        return f"stage {viewer.stage} is outside the rule's timing ({rule.timing})"
    if rule.stages and viewer.stage not in rule.stages:
        return f"stage {viewer.stage} is not targeted"
    if rule.paths and viewer.path not in rule.paths:
        return f"path {viewer.path} is not targeted"
    if rule.personas and (not viewer.consent or viewer.persona not in rule.personas):
        return "persona not targeted" if viewer.consent else "persona targeting needs personalization consent"
    needed = max(rule.min_sensitivity, INTENSITY_FLOOR.get(rule.intensity, 0.0))
    if viewer.sensitivity < needed:
        return f"scarcity sensitivity {viewer.sensitivity:.2f} is under the {needed:.2f} this rule needs"
    return None


def _at(moment: datetime) -> str:
    return moment.astimezone(timezone.get_fixed_timezone(0)).strftime("%Y-%m-%d %H:%M:%S UTC")


def _refuse(reason: str) -> Claim:
    return Claim(False, reason)


def claim_check(rule: RuleConfig, evidence: Mapping | None, *, now: datetime, template: str | None = None) -> Claim:
    """Whether the rule's claim is true now on ``evidence``, with the text it would show.

    Pure: reads nothing but its arguments. ``template`` replaces the rule's approved
    template (the admin previews a draft's wording with it).
    """
    offer = rule.offer
    if offer is None or not offer.serving:
        return _refuse("the offer is not live")
    if offer.starts_at is not None and offer.starts_at > now:
        return _refuse(f"the offer starts at {format_ends_at(offer.starts_at)}")
    if offer.ends_at is not None and offer.ends_at <= now:
        return _refuse(f"the offer ended at {format_ends_at(offer.ends_at)}")
    if evidence is None:
        return _refuse("no evidence has been measured yet")
    if evidence.get("offer") != offer.id:
        return _refuse("the evidence is about another offer (not recounted since the rule changed)")
    measured_at = _dt(evidence.get("measured_at"))
    computed_at = _dt(evidence.get("computed_at"))
    if measured_at is None or computed_at is None:
        return _refuse("the data source has never reported this number")
    bound = timedelta(seconds=rule.staleness_seconds)
    if measured_at > now + CLOCK_SKEW or computed_at > now + CLOCK_SKEW:
        return _refuse(f"the evidence is dated in the future ({_at(measured_at)})")
    oldest = min(measured_at, computed_at)
    if now - oldest > bound:
        return _refuse(
            f"the evidence is stale: measured {_at(measured_at)}, {int((now - oldest).total_seconds())} s ago "
            f"(bound {rule.staleness_seconds} s)"
        )
    values = dict(evidence.get("values") or {})
    template = rule.template if template is None else template
    made = dict(values=values, measured_at=measured_at, computed_at=computed_at)
    trigger = rule.trigger_type

    if trigger in (TriggerType.SOCIAL_PROOF_VIEWS, TriggerType.SOCIAL_PROOF_PURCHASES):
        if trigger == TriggerType.SOCIAL_PROOF_VIEWS and values.get("window_minutes") != rule.window_minutes:
            return _refuse("the evidence counted another window (not recounted since the rule changed)")
        if trigger == TriggerType.SOCIAL_PROOF_PURCHASES and values.get("since") != today_start(now).isoformat():
            return _refuse("the purchase count is from another day")
        count = values.get("count")
        needed = max(rule.threshold or 0, rule.minimum_count)
        phrase = window_phrase(trigger, rule.window_minutes or 0)
        what = "sessions viewed the offer" if trigger == TriggerType.SOCIAL_PROOF_VIEWS else "purchases of the offer"
        if not isinstance(count, int) or count < needed:
            return _refuse(f"{count} {what} {phrase}; the rule needs at least {needed}")
        text = render(template, {"count": count, "window": phrase, "offer": offer.name})
        return Claim(True, f"count={count} {what} {phrase} as of {_at(measured_at)}", text, **made)

    if trigger == TriggerType.LOW_STOCK:
        stock = values.get("stock_remaining")
        if not isinstance(stock, int):
            return _refuse("no stock has been reported")
        if stock <= 0:
            return _refuse(f"sold out (stock={stock} as of {_at(measured_at)})")
        if stock > (rule.threshold or 0):
            return _refuse(f"stock={stock} as of {_at(measured_at)} is above the threshold {rule.threshold}")
        restock = _dt(values.get("restock_at"))
        if restock is not None and restock <= now + timedelta(minutes=rule.window_minutes or 0):
            return _refuse(f"a restock is due {format_ends_at(restock)}, within the rule's window")
        text = render(template, {"stock": stock, "offer": offer.name})
        return Claim(True, f"stock={stock} as of {_at(measured_at)}", text, **made)

    if trigger in (TriggerType.OFFER_DEADLINE, TriggerType.FLASH_SALE):
        ends_at = offer.ends_at
        if ends_at is None:
            return _refuse("the offer has no end")
        if _dt(values.get("ends_at")) != ends_at:
            return _refuse("the evidence names another end than the approved offer (not recounted yet)")
        window = timedelta(minutes=rule.window_minutes or 0)
        if trigger == TriggerType.OFFER_DEADLINE and ends_at - now > window:
            return _refuse(f"the end {format_ends_at(ends_at)} is more than {rule.window_minutes} minutes away")
        if trigger == TriggerType.FLASH_SALE:
            if offer.discount_percent <= 0:
                return _refuse("a flash sale needs an approved discount")
            if offer.starts_at is None or ends_at - offer.starts_at > window:
                return _refuse(f"the sale is not a flash sale (longer than {rule.window_minutes} minutes)")
        text = render(template, {"ends_at": format_ends_at(ends_at), "offer": offer.name})
        because = f"the offer ends {format_ends_at(ends_at)}, in {_duration(ends_at - now)}"
        return Claim(True, because, text, ends_at=ends_at, **made)

    if trigger == TriggerType.EXCLUSIVITY:
        if not values.get("restricted"):
            return _refuse("the offer also reaches visitors outside a targeted audience")
        text = render(template, {"offer": offer.name})
        return Claim(True, f"only targeted variants {values.get('variants')} carry the offer", text, **made)

    return _refuse(f"unknown trigger {trigger}")


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _audience_refusal(rule: RuleConfig, viewer: Viewer, variants: Mapping[int, VariantConfig]) -> str | None:
    """Exclusivity also holds on the live configuration: every live variant carrying
    the offer is targeted, and this visitor matches one of them."""
    if not viewer.consent:
        return "an exclusive audience is a targeting: it needs personalization consent"
    carrying = [v for v in variants.values() if v.offer is not None and v.offer.id == rule.offer.id]
    if not carrying or any(v.is_default or v.specificity == 0 for v in carrying):
        return "the offer also reaches visitors outside a targeted audience"
    if not any(
        v.matches(
            path=viewer.path,
            stage=viewer.stage,
            device=viewer.device,
            persona=viewer.persona,
            returning=viewer.returning,
        )
        for v in carrying
    ):
        return "the visitor is not in the offer's audience"
    return None


def cue_validate(
    rule: RuleConfig,
    evidence: Mapping | None,
    viewer: Viewer,
    *,
    now: datetime,
    variants: Mapping[int, VariantConfig] | None = None,
) -> Verdict:
    """Whether ``rule``'s cue shows to ``viewer`` now (module docstring, part 2). Pure.

    The holdout here is the hashed one; the decision path replaces it with the
    recorded (sticky) membership when one exists.
    """
    refusal = eligibility_refusal(rule, viewer)
    if refusal is not None:
        return Verdict(rule, False, False, refusal)
    claim = claim_check(rule, evidence, now=now)
    if not claim.true:
        return Verdict(rule, False, False, claim.reason, claim)
    if rule.trigger_type == TriggerType.EXCLUSIVITY:
        refusal = _audience_refusal(rule, viewer, variants or {})
        if refusal is not None:
            return Verdict(rule, False, False, refusal, claim)
    bucket = holdout_bucket(rule.id, viewer.session_id)
    if bucket < rule.holdout_share:
        return Verdict(rule, True, False, "in the rule's holdout", claim, bucket)
    return Verdict(rule, True, True, claim.reason, claim, bucket)


# --- the decision path ------------------------------------------------------------------


# The cue part of a decision's one write statement (``personalization.decisions``): the
# CTEs record the holdout memberships of the eligible rules not recorded yet (with their
# hashed side), keep a membership recorded before (a session keeps its side even when
# the rule's holdout share changes later), and write the ledger row of every rule whose
# session is not held out. ``cue_shown`` returns the rules shown. The ledger row commits
# with the decision, before the answer that shows the cue is sent. The rows come as one
# JSON document (:func:`cue_write_params`), so the text is the same for any number of cues.
CUE_WRITE_CTES = f"""
cue_wanted AS (
    SELECT * FROM jsonb_to_recordset(%(cues)s::jsonb) AS t(
        rule_id bigint, in_holdout boolean, bucket float8, rule_version integer, trigger_type text, text text,
        evidence jsonb, measured_at timestamptz, ends_at timestamptz)
), cue_inserted AS (
    INSERT INTO {HoldoutMembership._meta.db_table} (rule_id, session_id, in_holdout, bucket, assigned_at)
    SELECT rule_id, %(session)s::bigint, in_holdout, bucket, %(now)s::timestamptz FROM cue_wanted
    ON CONFLICT (rule_id, session_id) DO NOTHING
    RETURNING rule_id, in_holdout
), cue_membership AS (
    SELECT rule_id, in_holdout FROM cue_inserted
    UNION ALL
    SELECT m.rule_id, m.in_holdout FROM {HoldoutMembership._meta.db_table} m
    WHERE m.session_id = %(session)s::bigint AND m.rule_id IN (SELECT rule_id FROM cue_wanted)
), cue_shown AS (
    INSERT INTO {ClaimLedger._meta.db_table}
        (session_id, rule_id, rule_version, trigger_type, text, evidence, evidence_measured_at, ends_at, shown_at)
    SELECT %(session)s::bigint, w.rule_id, w.rule_version, w.trigger_type, w.text, w.evidence, w.measured_at, w.ends_at,
        %(now)s::timestamptz
    FROM cue_wanted w LEFT JOIN cue_membership ms ON ms.rule_id = w.rule_id
    WHERE NOT COALESCE(ms.in_holdout, w.in_holdout)
    RETURNING rule_id
)"""


def cue_write_params(verdicts: list[Verdict]) -> dict:
    """The parameters of :data:`CUE_WRITE_CTES` for the eligible ``verdicts``.

    One JSON text: psycopg adapts a handful of arrays element by element, which cost
    more Python time than the statement takes in the database.
    """
    rows = [
        {
            "rule_id": v.rule.id,
            "in_holdout": not v.shown,
            "bucket": v.bucket,
            "rule_version": v.rule.version,
            "trigger_type": v.rule.trigger_type,
            "text": v.claim.text,
            "evidence": _evidence_out(v.claim),
            "measured_at": _iso(v.claim.measured_at),
            "ends_at": _iso(v.claim.ends_at),
        }
        for v in verdicts
    ]
    return {"cues": json.dumps(rows)}


def _evidence_out(claim: Claim) -> dict:
    return {**claim.values, "measured_at": _iso(claim.measured_at), "computed_at": _iso(claim.computed_at)}


def cue_out(verdict: Verdict) -> dict:
    rule, claim = verdict.rule, verdict.claim
    return {
        "rule": rule.key,
        "trigger_type": rule.trigger_type,
        "message": claim.text,
        "evidence": _evidence_out(claim),
        "ends_at": _iso(claim.ends_at),
        "offer": rule.offer.sku,
        "intensity": rule.intensity,
        "timing": rule.timing,
    }


def cues_eligible(*, session: JourneySession, now: datetime) -> list[Verdict]:
    """The cues that may show ``session`` now, before its holdout side is looked up.

    Reads rules and evidence from the in-process caches (no query, no Redis read) and
    writes nothing; the decision records what it shows with :data:`CUE_WRITE_CTES`.
    A site without live rules costs nothing.
    """
    rules = live_rules_for(session.site_id)
    if not rules:
        return []
    viewer = viewer_for(session)
    targeted = [rule for rule in rules if eligibility_refusal(rule, viewer) is None]
    if not targeted:
        return []
    evidence = _evidence.get()
    variants = (
        live_config_for(session.site_id).variants
        if any(rule.trigger_type == TriggerType.EXCLUSIVITY for rule in targeted)
        else None
    )
    return [
        verdict
        for verdict in (
            cue_validate(rule, evidence.get(rule.id), viewer, now=now, variants=variants) for rule in targeted
        )
        if verdict.eligible
    ]


def cues_shown(
    *, session: JourneySession, eligible: list[Verdict], recorded: Iterable[int], now: datetime
) -> list[dict]:
    """The answer's cues: the eligible ones whose ledger rows were written (``recorded``
    rule ids), announced on the live monitor."""
    recorded = set(recorded)
    shown = [verdict for verdict in eligible if verdict.rule.id in recorded]
    monitor.cues_shown_published(session=session, verdicts=shown, at=now)
    return [cue_out(verdict) for verdict in shown]


def cues_before(session: JourneySession, at: datetime) -> dict:
    """Attribution: the cues a session was shown before ``at``, one entry per rule."""
    rows = (
        ClaimLedger.objects.filter(session=session, shown_at__lte=at).select_related("rule").order_by("shown_at", "id")
    )
    seen: dict[int, dict] = {}
    for row in rows:
        entry = seen.setdefault(
            row.rule_id,
            {
                "rule": row.rule.key,
                "trigger_type": row.trigger_type,
                "first_shown_at": row.shown_at.isoformat(),
                "times": 0,
            },
        )
        entry.update(text=row.text, rule_version=row.rule_version, last_shown_at=row.shown_at.isoformat())
        entry["times"] += 1
    return {"scarcity": list(seen.values())}


# --- preview (admin) ----------------------------------------------------------------------


def rule_preview(*, rule: ScarcityRule, now: datetime | None = None) -> list[str]:
    """What the rule would show now, for its approved version and for a newer draft.

    "would show: 'Only 3 left' because stock=3 as of ..." or "would not show: ...".
    Targeting, sensitivity and holdout are per visitor and not part of the preview.
    """
    now = now or timezone.now()
    evidence = evidence_latest(rule)
    lines = []
    versions = []
    if rule.published is not None:
        offer = Offer.objects.filter(pk=rule.published["offer"]).first()
        state = "serving" if rule.serving else f"not serving ({rule.status})"
        versions.append((f"Approved version {rule.published_version} ({state})", rule.published, offer))
    if rule.published_version != rule.version:
        versions.append((f"Draft version {rule.version} (not approved)", snapshot(rule), rule.offer))
    for label, data, offer in versions:
        config = rule_config(
            data, rule_id=rule.pk, site_id=rule.site_id, version=rule.version, offer=offer_facts(offer)
        )
        claim = claim_check(config, evidence, now=now)
        if claim.true:
            lines.append(f"{label} would show: '{claim.text}' because {claim.reason}")
        else:
            lines.append(f"{label} would not show: {claim.reason}")
    return lines


# --- offers: stock, and terms that really end ---------------------------------------------


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


# --- rules: pause and resume --------------------------------------------------------------


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


# --- monitor ------------------------------------------------------------------------------


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


# --- visitor scarcity sensitivity ---------------------------------------------------------


def scarcity_sensitivity_learn(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Learn each visitor's scarcity sensitivity from how they responded to cues.

    A session's response is known once it ended, or ``RESPONSE_HOURS`` after its first
    cue: 1 when it converted (a type in ``CONVERSION_STAGE_TYPES``) after its first
    cue, else 0. The visitor's sensitivity moves toward it by an exponential moving
    average, ``s <- s + LEARNING_RATE * (response - s)`` (one step per session, in
    session order), so it stays in [0, 1] and recent sessions weigh most. Only
    visitors with personalization consent learn; without it the ledger rows are
    marked as scored and nothing about the visitor changes. Returns the sessions scored.
    """
    now = now or timezone.now()
    pending = ClaimLedger.objects.filter(scored_at__isnull=True).filter(
        Q(session__ended_at__isnull=False) | Q(shown_at__lt=now - timedelta(hours=RESPONSE_HOURS))
    )
    firsts = dict(
        pending.values("session_id").annotate(first=Min("shown_at")).values_list("session_id", "first")[:limit]
    )
    if not firsts:
        return 0
    conversions = ConversionEvent.objects.filter(
        session_id__in=list(firsts), type__in=settings.CONVERSION_STAGE_TYPES
    ).values_list("session_id", "converted_at")
    responded = {session_id for session_id, at in conversions if at >= firsts[session_id]}
    sessions = JourneySession.objects.filter(pk__in=list(firsts)).order_by("started_at", "id")
    with transaction.atomic():
        visitors = {
            visitor.pk: visitor
            for visitor in Visitor.objects.select_for_update().filter(
                pk__in=sessions.values("visitor_id"), consent_personalization=True
            )
        }
        for session_id, visitor_id in sessions.values_list("pk", "visitor_id"):
            visitor = visitors.get(visitor_id)
            if visitor is None:
                continue
            response = 1.0 if session_id in responded else 0.0
            learned = visitor.scarcity_sensitivity + LEARNING_RATE * (response - visitor.scarcity_sensitivity)
            visitor.scarcity_sensitivity = min(1.0, max(0.0, learned))
        Visitor.objects.bulk_update(list(visitors.values()), ["scarcity_sensitivity"])
        ClaimLedger.objects.filter(session_id__in=list(firsts), scored_at__isnull=True).update(scored_at=now)
    return len(firsts)


# --- effectiveness (analytics) ------------------------------------------------------------


def _rate(conversions: int, sessions: int) -> float | None:
    return conversions / sessions if sessions else None


def scarcity_effectiveness(
    *, site, since: datetime | None = None, until: datetime | None = None, goal: str = "purchase"
) -> list[dict]:
    """Per rule: impressions, and the conversion of exposed against holdout sessions.

    Sessions are those eligible for the rule (the ones recorded in
    :class:`HoldoutMembership` when first eligible in ``[since, until)``); a session
    converts when it has a ``goal`` conversion after it became eligible. The lift of
    exposed over holdout comes from :mod:`analytics.statistics`, the same functions as
    the experiments': relative lift with its delta-method and always-valid intervals,
    the Bayesian credible interval, and the chance that the cue beats the holdout.
    """
    claims = ClaimLedger.objects.filter(rule__site=site)
    members = HoldoutMembership.objects.filter(rule__site=site)
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
