"""Evidence (:func:`scarcity_evidence_refresh`, a worker every minute).

For every live rule it measures, from this site's own data only, the number its claim
rests on, and stores it with its measurement time in PostgreSQL (:class:`RuleEvidence`,
the latest per rule) and in Redis (one key per rule). What "viewed the offer" and
"purchased it today" mean:

- *viewed*: the people (:func:`journeys.selectors.people_count`) of the sessions that,
  inside the window, were shown a live variant carrying the offer (an
  :class:`Exposure`, recorded by the decision engine itself) or sent a touchpoint whose
  ``interaction_data.sku`` is the offer's SKU (received inside the window, by server
  time). The visitor's own session may be among them.
- *purchased today*: the people of the sessions with a ``purchase`` conversion whose
  ``product.sku`` is the offer's SKU, since midnight (``TIME_ZONE``).

Both claims say "people": sessions of crawlers, headless browsers and floods do not
count, one client address counts once however many sessions, visitor ids or page views
it sent, and an address or person whose volume marks a flood counts as nobody
(:func:`journeys.selectors.people_count`): a flood from one address, or a crawler's
visits, never raise a count.
- stock: the offer's ``stock_remaining`` and ``restock_at``, measured when the shop
  last reported it (``stock_updated_at``), not when the worker copied it.
- deadline, flash sale: the offer's approved ``starts_at``/``ends_at``/discount.
- exclusivity: whether every live variant that carries the offer is targeted (none
  is a default, each has at least one targeting condition): the offer then really
  reaches only a restricted audience, and the visitor must be in it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from core.config_cache import VersionedCache, bump
from core.redis_breaker import redis_call
from journeys.models import ConversionEvent, Touchpoint
from journeys.selectors import people_count
from personalization.models import ContentVariant, Exposure, Offer, RuleEvidence, ScarcityRule, Status, TriggerType
from personalization.services.scarcity.config import (
    RuleConfig,
    as_datetime,
    as_iso,
    live_rules,
    live_rules_load,
    offer_facts,
)

EVIDENCE_KEY = "scarcity-evidence:{}"
EVIDENCE_NAMESPACE = "scarcity-evidence"
EVIDENCE_TTL = 3600  # seconds; evidence this old is stale under any rule's bound anyway


def today_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in ``TIME_ZONE``: where "today" starts."""
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def viewers_count(*, offer_id: int, site_id: int, sku: str, since: datetime, until: datetime) -> int:
    """People who viewed the offer in ``[since, until]`` (module docstring)."""
    exposed = Exposure.objects.filter(
        variant__published__offer=offer_id, exposed_at__gte=since, exposed_at__lte=until
    ).values("session_id")
    touched = Touchpoint.objects.filter(
        site_id=site_id, received_at__gte=since, received_at__lte=until, interaction_data__sku=sku
    ).values("session_id")
    return people_count(exposed.union(touched, all=True))


def purchases_count(*, site_id: int, sku: str, since: datetime, until: datetime) -> int:
    """People who bought the offer's SKU in ``[since, until]`` (module docstring)."""
    return people_count(
        ConversionEvent.objects.filter(
            site_id=site_id, type="purchase", product__sku=sku, converted_at__gte=since, converted_at__lte=until
        ).values("session_id")
    )


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
        values = {"stock_remaining": offer.stock_remaining, "restock_at": as_iso(offer.restock_at)}
        measured_at = offer.stock_updated_at
    elif trigger in (TriggerType.OFFER_DEADLINE, TriggerType.FLASH_SALE):
        facts = offer_facts(offer)
        values = {
            "starts_at": as_iso(facts.starts_at) if facts else None,
            "ends_at": as_iso(facts.ends_at) if facts else None,
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
        "measured_at": as_iso(measured_at),
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
    one key per rule. Idempotent: a second run overwrites with newer numbers, and an
    overlapping run that measured earlier overwrites nothing. Returns how many rules
    were measured.
    """
    now = now or timezone.now()
    rules = [rule for site_rules in live_rules_load().values() for rule in site_rules]
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
    stored = _evidence_store(docs, now=now)
    # Without Redis the stored copy is the one decisions read (evidence_read).
    cached = {EVIDENCE_KEY.format(rule_id): docs[rule_id] for rule_id in stored}
    redis_call(lambda: cache.set_many(cached, timeout=EVIDENCE_TTL), None)
    live_evidence.clear()
    bump(EVIDENCE_NAMESPACE)
    return len(docs)


def _evidence_store(docs: dict[int, dict], *, now: datetime) -> list[int]:
    """Upsert the documents measured at ``now``; the rules whose stored evidence was not newer.

    Two refreshes can overlap (the minute's run, and the stock feed's refresh of one
    offer): a run that measured earlier never overwrites what a later one stored, in
    PostgreSQL or, since only the rules returned here are cached, in Redis.
    """
    table = RuleEvidence._meta.db_table
    rows, params = [], []
    for rule_id, doc in docs.items():
        rows.append("(%s, %s, %s::jsonb, %s, %s)")
        params += [rule_id, doc["rule_version"], json.dumps(doc["values"]), as_datetime(doc["measured_at"]), now]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (rule_id, rule_version, values, measured_at, computed_at) VALUES {', '.join(rows)} "
            "ON CONFLICT (rule_id) DO UPDATE SET rule_version = EXCLUDED.rule_version, values = EXCLUDED.values, "
            f"measured_at = EXCLUDED.measured_at, computed_at = EXCLUDED.computed_at "
            f"WHERE {table}.computed_at <= EXCLUDED.computed_at RETURNING rule_id",
            params,
        )
        return [row[0] for row in cursor.fetchall()]


def evidence_read(rule_ids: Iterable[int]) -> dict[int, dict]:
    """The cached evidence of the rules: one Redis round trip, no database.

    When Redis cannot be read, the stored copies (one query): the same documents, as
    fresh as the last refresh; a rule without any has no evidence, so no cue.
    """
    keys = {EVIDENCE_KEY.format(rule_id): rule_id for rule_id in rule_ids}
    found = redis_call(lambda: cache.get_many(list(keys)), None)
    if found is None:
        return evidence_stored(keys.values())
    return {keys[key]: doc for key, doc in found.items()}


def evidence_stored(rule_ids: Iterable[int]) -> dict[int, dict]:
    """The evidence stored in PostgreSQL (:class:`RuleEvidence`) of the rules, as :func:`evidence_read` gives it."""
    rule_ids = list(rule_ids)
    if not rule_ids:
        return {}
    return {
        stored.rule_id: {
            "rule": stored.rule_id,
            "rule_version": stored.rule_version,
            "offer": stored.rule.published["offer"] if stored.rule.published else stored.rule.offer_id,
            "values": stored.values,
            "measured_at": as_iso(stored.measured_at),
            "computed_at": stored.computed_at.isoformat(),
        }
        for stored in RuleEvidence.objects.filter(rule_id__in=rule_ids).select_related("rule")
    }


def _load_evidence() -> dict[int, dict]:
    return evidence_read(rule.id for rules in live_rules.get().values() for rule in rules)


# Every live rule's evidence, kept in process memory: a decision reads no Redis key for
# it. Each refresh moves the version (and empties this process's copy at once), so any
# process serves the new numbers within the version check interval (0.5 s), the same
# bound as for a rule being paused. A copy that grows old cannot make a false claim: the
# validator refuses evidence older than the rule's staleness bound.
live_evidence = VersionedCache(EVIDENCE_NAMESPACE, _load_evidence)


def evidence_latest(rules: Iterable[ScarcityRule]) -> dict[int, dict]:
    """The latest evidence of each rule (by rule id): the cached one, else the stored
    copy (for the admin preview). One Redis round trip, and one query when some
    rules' evidence is not cached.
    """
    rule_ids = [rule.pk for rule in rules]
    found = evidence_read(rule_ids)
    found.update(evidence_stored(rule_id for rule_id in rule_ids if rule_id not in found))
    return found
