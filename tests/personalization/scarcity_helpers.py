"""Builders for the scarcity tests: live offers, approved rules, sessions, and the facts behind claims."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from core.config_cache import VersionedCache
from journeys.models import ConversionEvent, JourneySession
from personalization.decisions import decide
from personalization.models import ContentVariant, Exposure, Offer, ScarcityRule, Slot, TriggerType
from personalization.services.approvals import offer_publish_without_approval
from personalization.services.scarcity.claims import holdout_bucket
from personalization.services.scarcity.offers import offer_stock_set
from tests.journeys.helpers import JourneySessionFactory, TouchpointFactory, start
from tests.personalization.helpers import approved, created

TEMPLATES = {
    TriggerType.SOCIAL_PROOF_VIEWS: "{count} people viewed this {window}",
    TriggerType.SOCIAL_PROOF_PURCHASES: "{count} people bought this {window}",
    TriggerType.LOW_STOCK: "Only {stock} left",
    TriggerType.OFFER_DEADLINE: "Offer ends {ends_at}",
    TriggerType.FLASH_SALE: "Flash sale: ends {ends_at}",
    TriggerType.EXCLUSIVITY: "An exclusive offer for returning customers",
}


def reload_config() -> None:
    """Approvals bump the configuration version on commit, which a test transaction never
    reaches; dropping the process caches makes the next read load what is stored."""
    VersionedCache.clear_all()


def approve(obj, people):
    obj = approved(obj, people)
    reload_config()
    return obj


def live_offer(
    site,
    people,
    *,
    sku: str = "A1",
    name: str = "Wireless earbuds",
    price: str = "50.00",
    discount: str = "0",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    stock: int | None = None,
    stock_at: datetime | None = None,
    restock_at: datetime | None = None,
) -> Offer:
    """A published offer: through approval with a discount, else the publish action; its
    stock, if any, reported by the marketer as of ``stock_at`` (default now)."""
    marketer, _ = people
    offer = created(
        Offer(
            site=site,
            name=name,
            sku=sku,
            price=Decimal(price),
            discount_percent=Decimal(discount),
            starts_at=starts_at,
            ends_at=ends_at,
            restock_at=restock_at,
        ),
        people,
    )
    if stock is not None:
        offer_stock_set(offer=offer, stock_remaining=stock, actor=marketer, now=stock_at or timezone.now())
    if offer.needs_approval:
        return approve(offer, people)
    offer = offer_publish_without_approval(offer=offer, actor=marketer)
    reload_config()
    return offer


def carrying_variant(site, offer, people, *, key: str = "offer-banner", **fields) -> ContentVariant:
    """A live variant in the ``offer_banner`` slot that carries ``offer``."""
    slot, _ = Slot.objects.get_or_create(site=site, key="offer_banner", defaults={"name": "Offer banner"})
    variant = created(
        ContentVariant(
            site=site, slot=slot, key=key, name=key, payload={"headline": offer.name}, offer=offer, **fields
        ),
        people,
    )
    return approve(variant, people)


def make_rule(site, offer, trigger: str, people, *, approved: bool = True, **fields) -> ScarcityRule:
    """A rule (no holdout unless asked), approved by default."""
    values = {
        "key": trigger.replace("_", "-"),
        "name": trigger,
        "message_template": TEMPLATES[trigger],
        "holdout_share": 0.0,
        **fields,
    }
    rule = created(ScarcityRule(site=site, offer=offer, trigger_type=trigger, **values), people)
    if approved:
        return approve(rule, people)
    return rule


def visit(api, session_id: str, *, consent: bool = True, **fields) -> JourneySession:
    """Start a session through the API (personalization consent by default) and load it."""
    response = start(api, session_id, slots=[], consent={"personalization": consent}, **fields)
    assert response.status_code == 201, response.json()
    return session_of(session_id)


def session_of(session_id: str) -> JourneySession:
    return JourneySession.objects.select_related("visitor").get(session_id=session_id)


def cues(session_id: str, *, now: datetime | None = None) -> list[dict]:
    """The ``scarcity`` block of a decision for the session, through the real engine."""
    return decide(session=session_of(session_id), slots=[], now=now)["scarcity"]


def session_id_in(rule: ScarcityRule, *, holdout: bool, prefix: str = "s") -> str:
    """A session id whose hashed bucket puts it in (or out of) the rule's holdout."""
    share = rule.published["holdout_share"]
    for index in range(1000):
        candidate = f"{prefix}-{index}"
        if (holdout_bucket(rule.pk, candidate) < share) == holdout:
            return candidate
    raise AssertionError("no session id found")


def exposed_sessions(site, variant: ContentVariant, count: int, *, at: datetime) -> list[JourneySession]:
    """``count`` other sessions shown ``variant`` at ``at``."""
    sessions = [JourneySessionFactory(site=site) for _ in range(count)]
    Exposure.objects.bulk_create(
        Exposure(session=session, variant=variant, variant_version=variant.published_version, exposed_at=at)
        for session in sessions
    )
    return sessions


def sku_touchpoints(sessions, sku: str, *, at: datetime) -> None:
    for session in sessions:
        TouchpointFactory(
            session=session,
            type="interaction",
            interaction_type="product_view",
            interaction_data={"sku": sku},
            received_at=at,
            client_timestamp=at,
        )


def purchases(site, sku: str, count: int, *, at: datetime) -> list[ConversionEvent]:
    """``count`` purchases of ``sku`` by other sessions, at ``at``."""
    return [
        ConversionEvent.objects.create(
            site=site,
            session=JourneySessionFactory(site=site),
            event_id=uuid.uuid4(),
            type="purchase",
            value=Decimal("50.00"),
            product={"sku": sku},
            payload_hash="0" * 32,
            converted_at=at,
        )
        for _ in range(count)
    ]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# One scenario per trigger: the facts that make its claim true (or false), and the text it shows.

ALL_TRIGGERS = list(TriggerType)


class Scenario:
    def __init__(self, rule: ScarcityRule, offer: Offer, text: str, session_fields: dict | None = None):
        self.rule = rule
        self.offer = offer
        self.text = text
        self.session_fields = session_fields or {}


def scenario(trigger: str, site, people, *, now: datetime, true: bool = True, **rule_fields) -> Scenario:
    """Build the offer, data and rule of ``trigger`` so that its claim is ``true`` (or false) at ``now``."""
    from personalization.cue_text import format_ends_at
    from personalization.services.scarcity.evidence import today_start

    if trigger == TriggerType.SOCIAL_PROOF_VIEWS:
        offer = live_offer(site, people)
        variant = carrying_variant(site, offer, people)
        exposed = exposed_sessions(site, variant, 3 if true else 1, at=now - minutes(10))
        sku_touchpoints(exposed[:1], offer.sku, at=now - minutes(5))  # seen twice: counted once
        sku_touchpoints([JourneySessionFactory(site=site)], offer.sku, at=now - minutes(5))
        rule = make_rule(site, offer, trigger, people, **{"threshold": 3, **rule_fields})
        count = 4 if true else 2
        return Scenario(rule, offer, f"{count} people viewed this in the last hour")
    if trigger == TriggerType.SOCIAL_PROOF_PURCHASES:
        offer = live_offer(site, people)
        if true:
            purchases(site, offer.sku, 2, at=max(today_start(now), now - timedelta(seconds=1)))
        rule = make_rule(site, offer, trigger, people, **{"threshold": 1, **rule_fields})
        return Scenario(rule, offer, "2 people bought this today")
    if trigger == TriggerType.LOW_STOCK:
        offer = live_offer(site, people, stock=3 if true else 8, stock_at=now)
        rule = make_rule(site, offer, trigger, people, **{"threshold": 5, **rule_fields})
        return Scenario(rule, offer, "Only 3 left")
    if trigger == TriggerType.OFFER_DEADLINE:
        ends_at = now + (timedelta(hours=2) if true else timedelta(days=3))
        offer = live_offer(site, people, ends_at=ends_at)
        rule = make_rule(site, offer, trigger, people, **rule_fields)
        return Scenario(rule, offer, f"Offer ends {format_ends_at(ends_at)}")
    if trigger == TriggerType.FLASH_SALE:
        ends_at = now + (timedelta(hours=2) if true else timedelta(days=3))
        offer = live_offer(site, people, discount="20", starts_at=now - timedelta(hours=1), ends_at=ends_at)
        rule = make_rule(site, offer, trigger, people, **rule_fields)
        return Scenario(rule, offer, f"Flash sale: ends {format_ends_at(ends_at)}")
    if trigger == TriggerType.EXCLUSIVITY:
        offer = live_offer(site, people, discount="15")
        carrying_variant(site, offer, people, key="returning-only", target_returning=True)
        if not true:
            carrying_variant(site, offer, people, key="for-everyone", is_default=True)
        rule = make_rule(site, offer, trigger, people, **rule_fields)
        return Scenario(rule, offer, TEMPLATES[trigger], {"returning": True})
    raise ValueError(trigger)
