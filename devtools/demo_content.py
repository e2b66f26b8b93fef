"""The demo site's content and history, built only through the product's services.

What ``make run`` shows: the demo shop (:mod:`devtools.demo_shop`) on its own origin,
talking to the engine through the browser SDK only. Its site gets:

- slots ``hero``, ``cta`` and ``offer_banner``, with content variants written by a
  marketer (``demo-marketer``, in the Marketers group) and approved by a different
  approver (the ``admin`` superuser of ``make run``), as in the admin;
- a running fixed-weight experiment on ``hero`` (control and one challenger) and a
  bandit on ``cta`` (three arms);
- one offer per shop product (:mod:`devtools.demo_shop.catalog`); the Aurora
  Headphones carry an approved 20% launch deal with a real end about two days after
  the first launch, and a low stock the shop's feed keeps confirming;
- approved urgency rules on the Aurora offer: low stock (at or under 10), the deal's
  deadline (a countdown within its last three days) and views in the last hour;
- 30 days of history (:func:`devtools.bulk_data.bulk_fill`) tied to those objects,
  rolled up, so every dashboard shows something on the first start.

Idempotent: every object is looked up by its key and made only when missing, so a
second run changes nothing, and an object a person edited in the admin since is left
as it is. History is made once, while the site has no sessions. The deal's end is
one absolute deadline that never moves (PRODUCT.md section 6): once it has passed,
the next run ends the deal for real (list price, no end; a relaunch on the same
terms is refused for the cooldown) instead of restarting the countdown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from analytics.rollups import rollups_update
from devtools.bulk_data import BulkResult, Catalog, Cue, Placement, bulk_fill
from devtools.demo_shop.catalog import AURORA, CURRENCY, PRODUCTS
from journeys.models import JourneySession, Site
from journeys.services.sites import site_create, site_origins_set
from personalization.cue_text import format_ends_at, window_phrase
from personalization.models import (
    Allocation,
    ApprovalRequest,
    ContentVariant,
    Experiment,
    Offer,
    RequestStatus,
    ScarcityRule,
    Slot,
    Status,
    TriggerType,
)
from personalization.services.approvals import (
    approvable_create,
    approvable_edit,
    approval_decide,
    approval_submit,
    checklist_all_ticked,
    offer_publish_without_approval,
)
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from personalization.services.scarcity.offers import OfferTermsRefused, offer_edit, offer_stock_set

DEMO_SITE_NAME = "Demo Shop"
DEMO_SITE_DOMAIN = "demo.example"
MARKETER_USERNAME = "demo-marketer"
MARKETERS_GROUP = "Marketers"

HISTORY_DAYS = 30
HISTORY_SESSIONS = 3000
HISTORY_TOUCHPOINTS = 6
HISTORY_SEED = 20261205
HISTORY_PREFIX = "demo-history-"

# The deal ends about two days after the first launch, on a full hour: a relaunch the
# next day still shows its countdown, which the deadline rule shows in its last 3 days.
DEAL_HOURS = 49
DEADLINE_WINDOW_MINUTES = 3 * 24 * 60

SLOTS = {"hero": "Hero", "cta": "Call to action", "offer_banner": "Offer banner"}

# key -> (slot, name, strategy, is_default, payload). Images are paths on the shop's own
# origin (the SDK resolves them against the page and accepts only http(s)).
VARIANTS = {
    "hero-product": (
        "hero",
        "Hero: the product",
        "",
        True,
        {
            "headline": "Aurora Headphones",
            "body": "Adaptive noise cancelling, 40 hours of battery and a fold-flat frame that fits any bag.",
            "image": "/static/img/aurora.svg",
            "cta": "Shop Aurora",
        },
    ),
    "hero-quiet-commute": (
        "hero",
        "Hero: the quiet commute",
        "",
        False,
        {
            "headline": "Your commute, finally quiet",
            "body": "Aurora cancels the train, the office and the café, and lasts 40 hours on one charge.",
            "image": "/static/img/aurora-commute.svg",
            "cta": "Hear the difference",
        },
    ),
    "cta-add-to-cart": ("cta", "CTA: add to cart", "", True, {"cta": "Add to cart"}),
    "cta-free-returns": ("cta", "CTA: free returns", "", False, {"cta": "Add to cart · free 30-day returns"}),
    "cta-ships-today": ("cta", "CTA: ships today", "", False, {"cta": "Add to cart · ships within 24 h"}),
    "offer-aurora-deal": (
        "offer_banner",
        "Banner: Aurora launch deal",
        "scarcity_offer",
        True,
        {
            "headline": "Launch deal: Aurora Headphones 20% off",
            "body": "€149 → €119.20 until the deal ends. Free shipping and 30-day returns.",
            "cta": "Get the deal",
        },
    ),
}
OFFER_VARIANTS = {"offer-aurora-deal": AURORA.sku}
BANNER_AFTER_DEAL = {
    "headline": "Aurora Headphones",
    "body": "Free shipping and 30-day returns.",
    "cta": "Shop Aurora",
}

# key -> (slot, name, hypothesis, allocation, arms: [(variant, is_control, weight)])
EXPERIMENTS = {
    "hero-test": (
        "hero",
        "Hero: product vs quiet commute",
        "A benefit headline (the quiet commute) sells more headphones than the product name.",
        Allocation.FIXED,
        [("hero-product", True, 0.5), ("hero-quiet-commute", False, 0.5)],
    ),
    "cta-bandit": (
        "cta",
        "Add-to-cart button copy",
        "Naming a service promise next to the button lifts purchases; the bandit finds which.",
        Allocation.BANDIT,
        [("cta-add-to-cart", True, 1 / 3), ("cta-free-returns", False, 1 / 3), ("cta-ships-today", False, 1 / 3)],
    ),
}

# key -> (trigger, name, template, fields)
RULES = {
    "aurora-low-stock": (
        TriggerType.LOW_STOCK,
        "Aurora: low stock",
        "Only {stock} left in stock",
        {"threshold": 10},
    ),
    "aurora-deadline": (
        TriggerType.OFFER_DEADLINE,
        "Aurora: launch deal deadline",
        "Deal ends {ends_at}",
        {"window_minutes": DEADLINE_WINDOW_MINUTES, "intensity": "low"},
    ),
    "aurora-views": (
        TriggerType.SOCIAL_PROOF_VIEWS,
        "Aurora: viewed in the last hour",
        "{count} people viewed {offer} {window}",
        {"threshold": 5, "window_minutes": 60, "minimum_count": 5, "intensity": "low"},
    ),
}


@dataclass
class DemoContent:
    site: Site
    created: list[str] = field(default_factory=list)
    history: BulkResult | None = None
    rollup_keys: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def demo_site_ensure(*, origins: list[str]) -> Site:
    """The demo site, created with ``origins`` or given the ones it lacks."""
    site = Site.objects.filter(domain=DEMO_SITE_DOMAIN).first()
    if site is None:
        return site_create(name=DEMO_SITE_NAME, domain=DEMO_SITE_DOMAIN, allowed_origins=origins)
    missing = [origin for origin in origins if origin not in site.allowed_origins]
    if missing:
        site = site_origins_set(site=site, allowed_origins=[*site.allowed_origins, *missing])
    return site


def demo_marketer():
    """The marketer who authors the demo content (staff, Marketers group, no password)."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=MARKETER_USERNAME, defaults={"is_staff": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=MARKETERS_GROUP))
    return user


def demo_content_build(
    *,
    site: Site,
    approver,
    shop_url: str,
    now: datetime | None = None,
    history_sessions: int = HISTORY_SESSIONS,
    holdout_share: float = 0.1,
    log=print,
) -> DemoContent:
    """Make what is missing of the demo content, then the history if the site has none.

    ``approver`` decides the marketer's requests (an approver or superuser other than the
    marketer). ``shop_url`` is the demo shop's origin, for the history's page URLs.
    ``holdout_share`` is the new rules' holdout (tests take 0, so a scripted visitor
    always sees the cues). Returns what was created and how long it took.
    """
    started = time.monotonic()
    now = now or timezone.now()
    result = DemoContent(site=site)
    with transaction.atomic():
        marketer = demo_marketer()
        author = _Author(marketer=marketer, approver=approver, result=result)
        slots = {key: _slot(site, key, name, result) for key, name in SLOTS.items()}
        offers = {product.sku: author.offer(site, product, now=now) for product in PRODUCTS}
        variants = {
            key: author.variant(
                site, key, slots[slot], name, strategy, is_default, payload, offers.get(OFFER_VARIANTS.get(key))
            )
            for key, (slot, name, strategy, is_default, payload) in VARIANTS.items()
        }
        experiments = {
            key: author.experiment(site, key, slots[slot], name, hypothesis, allocation, arms, variants, now=now)
            for key, (slot, name, hypothesis, allocation, arms) in EXPERIMENTS.items()
        }
        rules = {
            key: author.rule(site, key, trigger, name, template, fields, offers[AURORA.sku], holdout_share)
            for key, (trigger, name, template, fields) in RULES.items()
        }
        _deal_end_if_passed(offers[AURORA.sku], variants["offer-aurora-deal"], author=author, now=now)
    if not JourneySession.objects.filter(site=site).exists() and history_sessions > 0:
        log(f"   history: {history_sessions:,} sessions over {HISTORY_DAYS} days")
        catalog = _history_catalog(
            variants=variants, experiments=experiments, rules=rules, offer=offers[AURORA.sku], shop_url=shop_url
        )
        result.history = bulk_fill(
            site=site,
            catalog=catalog,
            sessions=history_sessions,
            touchpoints_per_session=HISTORY_TOUCHPOINTS,
            days=HISTORY_DAYS,
            seed=HISTORY_SEED,
            prefix=HISTORY_PREFIX,
            end=now,
            log=log,
        )
        result.rollup_keys = rollups_update().keys
        log(f"   rollups: {result.rollup_keys} (site, day) keys")
    scarcity_evidence_refresh(site_id=site.pk, now=now)
    result.seconds = time.monotonic() - started
    return result


def _slot(site: Site, key: str, name: str, result: DemoContent) -> Slot:
    slot, created = Slot.objects.get_or_create(site=site, key=key, defaults={"name": name})
    if created:
        result.created.append(f"slot {key}")
    return slot


@dataclass
class _Author:
    """Creates objects as the marketer would in the admin and has the approver approve them."""

    marketer: object
    approver: object
    result: DemoContent

    def create(self, obj, label: str, *, arms: list[dict] | None = None):
        obj = approvable_create(obj=obj, actor=self.marketer, arms=arms)
        self.result.created.append(label)
        return obj

    def approve(self, obj):
        request = approval_submit(obj=obj, requester=self.marketer)
        approval_decide(
            request=request,
            decider=self.approver,
            approve=True,
            comment="Demo content.",
            checklist=checklist_all_ticked(request),
        )
        obj.refresh_from_db()
        return obj

    def offer(self, site: Site, product, *, now: datetime) -> Offer:
        offer = Offer.objects.filter(site=site, sku=product.sku).first()
        if offer is not None:
            return offer
        deal = product.deal_percent > 0
        offer = Offer(
            site=site,
            name=product.name,
            sku=product.sku,
            price=product.price,
            currency=CURRENCY,
            discount_percent=product.deal_percent,
            starts_at=now - timedelta(days=HISTORY_DAYS) if deal else None,
            ends_at=(now + timedelta(hours=DEAL_HOURS)).replace(minute=0, second=0, microsecond=0) if deal else None,
        )
        offer = self.create(offer, f"offer {product.sku}")
        offer = offer_stock_set(offer=offer, stock_remaining=product.stock, actor=self.marketer, now=now)
        if offer.needs_approval:
            return self.approve(offer)
        return offer_publish_without_approval(offer=offer, actor=self.marketer)

    def variant(self, site, key, slot, name, strategy, is_default, payload, offer) -> ContentVariant:
        variant = ContentVariant.objects.filter(site=site, key=key).first()
        if variant is not None:
            return variant
        variant = ContentVariant(
            site=site,
            slot=slot,
            key=key,
            name=name,
            payload=payload,
            strategy=strategy,
            is_default=is_default,
            offer=offer,
        )
        return self.approve(self.create(variant, f"variant {key}"))

    def experiment(self, site, key, slot, name, hypothesis, allocation, arms, variants, *, now) -> Experiment:
        experiment = Experiment.objects.filter(site=site, key=key).first()
        if experiment is not None:
            return experiment
        experiment = Experiment(
            site=site,
            key=key,
            name=name,
            hypothesis=hypothesis,
            slot=slot,
            allocation=allocation,
            primary_goal="purchase",
            minimum_sample=1000,
            # It has run as long as the history says it has.
            started_at=now - timedelta(days=HISTORY_DAYS),
        )
        arms = [
            {"variant": variants[variant].pk, "is_control": control, "weight": weight}
            for variant, control, weight in arms
        ]
        return self.approve(self.create(experiment, f"experiment {key}", arms=arms))

    def rule(self, site, key, trigger, name, template, fields, offer, holdout_share) -> ScarcityRule:
        rule = ScarcityRule.objects.filter(site=site, key=key).first()
        if rule is not None:
            return rule
        rule = ScarcityRule(
            site=site,
            key=key,
            name=name,
            trigger_type=trigger,
            offer=offer,
            message_template=template,
            holdout_share=holdout_share,
            **fields,
        )
        return self.approve(self.create(rule, f"rule {key}"))


def _deal_end_if_passed(offer: Offer, banner: ContentVariant, *, author: _Author, now: datetime) -> None:
    """When the approved deal has ended, end its terms: list price, no end, and a banner without the deal.

    Restarting the countdown would be the fake deadline the engine refuses; the same
    terms may run again only after the cooldown. An offer a person changed since (a
    draft, or a request waiting) is left to them, and so is a banner they rewrote.
    """
    published = offer.published or {}
    ends_at = published.get("ends_at")
    if not ends_at or datetime.fromisoformat(ends_at) > now or offer.status != Status.LIVE:
        return
    waiting = ApprovalRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(Offer), object_id=offer.pk, status=RequestStatus.PENDING
    ).exists()
    if waiting or offer.version != offer.published_version:
        return
    try:
        offer = offer_edit(
            offer=offer, actor=author.marketer, changes={"discount_percent": Decimal("0"), "ends_at": None}, now=now
        )
    except OfferTermsRefused as refused:
        author.result.notes.append(str(refused))
        return
    offer_publish_without_approval(offer=offer, actor=author.marketer)
    author.result.notes.append(
        f"The {offer.name} launch deal ended at {format_ends_at(datetime.fromisoformat(ends_at))}; "
        f"{offer.sku} is back at its list price ({offer.price} {offer.currency}) and the countdown is gone."
    )
    if (
        banner.published
        and banner.published.get("payload") == VARIANTS[banner.key][4]
        and banner.version == banner.published_version
    ):
        author.approve(approvable_edit(obj=banner, actor=author.marketer, changes={"payload": BANNER_AFTER_DEAL}))
        author.result.notes.append(f"The banner {banner.key} no longer names the deal.")


def deals_of(site: Site, *, now: datetime | None = None) -> dict[str, tuple[Decimal, datetime]]:
    """SKU -> (discount percent, end) of the site's approved deals that run now: what the shop honours."""
    now = now or timezone.now()
    deals = {}
    for offer in Offer.objects.filter(site=site).exclude(published=None):
        if not offer.serving:
            continue
        data = offer.published
        percent = Decimal(str(data["discount_percent"]))
        starts_at = datetime.fromisoformat(data["starts_at"]) if data.get("starts_at") else None
        ends_at = datetime.fromisoformat(data["ends_at"]) if data.get("ends_at") else None
        if percent > 0 and ends_at is not None and ends_at > now and (starts_at is None or starts_at <= now):
            deals[data["sku"]] = (percent, ends_at)
    return deals


def _history_catalog(*, variants, experiments, rules, offer: Offer, shop_url: str) -> Catalog:
    """What the history's sessions saw: the demo's real variants, arms and rules.

    90% of sessions (personalization consent) are in both experiments; the others see
    the controls. The challenger hero and the "free returns" button sell a little
    better, and the low-stock cue has a small true lift over its holdout.
    """
    hero, cta = experiments["hero-test"], experiments["cta-bandit"]
    v = {key: variant.pk for key, variant in variants.items()}
    deal_end = datetime.fromisoformat(offer.published["ends_at"]) if offer.published.get("ends_at") else None
    low_stock, deadline, views = rules["aurora-low-stock"], rules["aurora-deadline"], rules["aurora-views"]
    placements = (
        Placement((v["hero-product"], v["hero-quiet-commute"]), (1, 1), hero.pk, high=900, converting_tickets=(44, 56)),
        Placement((v["hero-product"],), (1,), None, low=900),
        Placement(
            (v["cta-add-to-cart"], v["cta-free-returns"], v["cta-ships-today"]),
            (1, 1, 1),
            cta.pk,
            high=900,
            from_stage="consideration",
            converting_tickets=(30, 39, 31),
        ),
        Placement((v["cta-add-to-cart"],), (1,), None, low=900, from_stage="consideration"),
        Placement((v["offer-aurora-deal"],), (1,), None, layer=1, from_stage="consideration"),
    )
    cues = [
        Cue(
            low_stock.pk,
            low_stock.trigger_type,
            low_stock.message_template,
            number="stock",
            evidence_key="stock_remaining",
            low=2,
            high=9,
            holdout_share=low_stock.holdout_share,
            converting_holdout_share=low_stock.holdout_share * 0.7,
            from_stage="consideration",
        ),
        Cue(
            views.pk,
            views.trigger_type,
            views.message_template.replace("{offer}", offer.name).replace(
                "{window}", window_phrase(views.trigger_type, views.window_minutes)
            ),
            number="count",
            evidence_key="count",
            low=views.threshold,
            high=views.threshold + 9,
            holdout_share=views.holdout_share,
            from_stage="consideration",
        ),
    ]
    if deal_end is not None:
        # One absolute deadline for everyone: shown only in its window, before its end.
        cues.append(
            Cue(
                deadline.pk,
                deadline.trigger_type,
                deadline.message_template.replace("{ends_at}", format_ends_at(deal_end)),
                holdout_share=deadline.holdout_share,
                from_stage="consideration",
                since=deal_end - timedelta(minutes=deadline.window_minutes),
                ends_at=deal_end,
            )
        )
    product_url = f"{shop_url}/products/{AURORA.slug}"
    return Catalog(
        placements=placements,
        cues=tuple(cues),
        page_urls=(f"{shop_url}/", product_url, product_url, f"{shop_url}/cart", f"{shop_url}/checkout"),
        page_title=AURORA.name,
        sku=AURORA.sku,
        order_values=(AURORA.price_with(AURORA.deal_percent),) * 3 + (AURORA.price_with(AURORA.deal_percent) * 2,),
        currency=CURRENCY,
    )
