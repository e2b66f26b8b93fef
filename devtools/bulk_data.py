"""Bulk synthetic traffic, generated inside PostgreSQL: for a new site, or added to an existing one.

Every table is filled by ``INSERT ... SELECT ... FROM generate_series`` statements, so a
million sessions with ten million touchpoints take minutes, not hours, and no row
crosses the network. Values come from ``hashint8extended(i, seed)``: the same seed
gives the same traffic on every run (up to the generated ids and uuids' order).

The shape follows PRODUCT.md section 3: devices and sources choose paths, sessions
stop at a furthest stage (45% awareness, 25% consideration, 15% decision, 12%
conversion, 3% retention) with one transition per move, sessions that reach
``conversion`` have a purchase, and touchpoints are spread over the session, 30 s
apart. What the sessions see is the :class:`Catalog`: which variants (and experiments'
arms) they are exposed to, each exposure with a personalization record, and which
scarcity rules they are eligible for (holdout memberships) and shown (the claims
ledger). :func:`bulk_generate` makes a new site with a small catalog of its own (two
experiments and a low-stock rule, for the dashboard benchmark); :func:`bulk_fill` adds
history to a site whose slots, variants, experiments and rules exist already (the
demo site of ``make run``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from itertools import accumulate

from django.db import connection, transaction

from journeys.models import STAGE_ORDER, Site
from journeys.services.sites import site_create
from personalization.models import ContentVariant, Experiment, ExperimentArm, Offer, ScarcityRule, Slot

STAGES = "ARRAY['awareness','consideration','decision','conversion','retention']"
CONVERTING = "('conversion', 'retention')"


@dataclass(frozen=True)
class Placement:
    """Variants of one slot as the generated sessions see them.

    A session that reached ``from_stage`` and whose roll of ``layer`` (0..999, one roll
    per session and layer) is in ``[low, high)`` is exposed to one of ``variants`` (the
    arms of ``experiment``, or none), picked with the integer weights ``tickets``.
    Converting sessions pick with ``converting_tickets`` when given: that is how one
    arm gets a true effect.
    """

    variants: tuple[int, ...]
    tickets: tuple[int, ...]
    experiment: int | None = None
    layer: int = 0
    low: int = 0
    high: int = 1000
    from_stage: str = "awareness"
    converting_tickets: tuple[int, ...] | None = None
    version: int = 1


@dataclass(frozen=True)
class Cue:
    """A scarcity rule's history.

    Sessions that reached ``from_stage`` (and started at or after ``since``) are
    eligible; a ``holdout_share`` of them is held out (``converting_holdout_share`` of
    the converting ones, when given: a cue with a true lift), the others are shown the
    cue once or twice. ``text`` is the approved template with ``{offer}`` and
    ``{window}`` filled in; its number placeholder (``number``: ``stock`` or ``count``)
    is filled with a value in ``[low, high]`` that changes every hour, and stored in the
    evidence under ``evidence_key``. A countdown (``ends_at``) has no number: its text
    is final and every claim counts down to the same ``ends_at``.
    """

    rule: int
    trigger_type: str
    text: str
    number: str = ""
    evidence_key: str = ""
    low: int = 0
    high: int = 0
    holdout_share: float = 0.1
    converting_holdout_share: float | None = None
    from_stage: str = "decision"
    since: datetime | None = None
    ends_at: datetime | None = None
    version: int = 1


@dataclass(frozen=True)
class Catalog:
    """What generated sessions see, buy and where they browse."""

    placements: tuple[Placement, ...]
    cues: tuple[Cue, ...] = ()
    page_urls: tuple[str, ...] = tuple(f"https://shop.example/p/{n}" for n in range(500))
    page_title: str = "Product"
    # Purchases: the SKU bought and the order values to pick from; without values,
    # 10.00 to 199.99.
    sku: str = ""
    order_values: tuple[Decimal, ...] = ()
    currency: str = "EUR"


@dataclass
class BulkResult:
    site_id: int
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _h(k: int) -> str:
    """A deterministic non-negative pseudo-random bigint of the row number ``g`` and the seed."""
    return f"abs(hashint8extended(g, %(seed)s * 64 + {k}))"


def bulk_generate(
    *, sessions: int, touchpoints_per_session: int, days: int, seed: int, last_day: date, log=print
) -> BulkResult:
    """Create a site named after the seed and fill it; returns the site id and row counts.

    Sessions start over ``days`` UTC days ending with ``last_day``. One transaction: a
    failed or killed run leaves nothing behind. The rollup triggers mark the site's days
    dirty as the rows go in, so the next rollup run builds the site's rollups.
    """
    with transaction.atomic():
        token = f"{seed}-{sessions}-{touchpoints_per_session}-{days}-{last_day:%Y%m%d}"
        site = site_create(name=f"bulk {token}", domain=f"bulk-{token}.invalid")
        return _fill(
            site=site,
            catalog=_bench_catalog(site),
            sessions=sessions,
            touchpoints_per_session=touchpoints_per_session,
            first=datetime.combine(last_day - timedelta(days=days - 1), dtime.min, tzinfo=UTC),
            end=datetime.combine(last_day + timedelta(days=1), dtime.min, tzinfo=UTC),
            seed=seed,
            prefix=f"b{seed}-",
            log=log,
        )


def bulk_fill(
    *,
    site: Site,
    catalog: Catalog,
    sessions: int,
    touchpoints_per_session: int,
    days: int,
    seed: int,
    prefix: str,
    end: datetime,
    log=print,
) -> BulkResult:
    """Add ``sessions`` sessions to an existing ``site``, started over the ``days`` before ``end``.

    Every session, with its touchpoints, conversion and the exposures, holdouts and
    claims of ``catalog``, is over by ``end`` (a session starts early enough for its
    last touchpoint and its purchase to happen before it). Visitor and session ids
    start with ``prefix``, which must be new on the site. One transaction, as
    :func:`bulk_generate`.
    """
    with transaction.atomic():
        return _fill(
            site=site,
            catalog=catalog,
            sessions=sessions,
            touchpoints_per_session=touchpoints_per_session,
            first=end - timedelta(days=days),
            end=end,
            seed=seed,
            prefix=prefix,
            log=log,
        )


def _bench_catalog(site: Site) -> Catalog:
    """Two experiments on a hero slot (60% and 30% of sessions) and a low-stock rule."""
    slot = Slot.objects.create(site=site, key="hero", name="Hero")
    placements = []
    for number, (low, high) in enumerate([(0, 600), (600, 900)], start=1):
        experiment = Experiment.objects.create(site=site, key=f"exp-{number}", name=f"Experiment {number}", slot=slot)
        variants = []
        for letter in "ab":
            variant = ContentVariant.objects.create(
                site=site, slot=slot, key=f"exp-{number}-{letter}", name=f"{number}{letter}"
            )
            ExperimentArm.objects.create(experiment=experiment, variant=variant, is_control=letter == "a")
            variants.append(variant.pk)
        placements.append(Placement(tuple(variants), (1, 1), experiment.pk, low=low, high=high))
    offer = Offer.objects.create(site=site, name="Earbuds", sku="A1", price=Decimal("49.90"))
    rule = ScarcityRule.objects.create(
        site=site,
        key="low-stock",
        name="Low stock",
        trigger_type="low_stock",
        offer=offer,
        message_template="Only {stock} left",
    )
    cue = Cue(rule.pk, "low_stock", "Only {stock} left", number="stock", evidence_key="stock_remaining", low=3, high=3)
    return Catalog(placements=tuple(placements), cues=(cue,))


def _cumulative(tickets: tuple[int, ...]) -> list[int]:
    if not tickets or min(tickets) < 0 or sum(tickets) <= 0:
        raise ValueError(f"tickets must be non-negative with a positive sum: {tickets}")
    return list(accumulate(tickets))


def _placement_sql(index: int, placement: Placement) -> tuple[str, dict]:
    """Exposures of one placement; the arm is the first whose cumulative tickets pass the session's draw."""
    if len(placement.tickets) != len(placement.variants) or (
        placement.converting_tickets is not None and len(placement.converting_tickets) != len(placement.variants)
    ):
        raise ValueError("a placement needs one ticket count per variant")
    params = {
        "p_variants": list(placement.variants),
        "p_experiment": placement.experiment,
        "p_version": placement.version,
        "p_cum": _cumulative(placement.tickets),
        "p_cum_conv": _cumulative(placement.converting_tickets or placement.tickets),
        "p_low": placement.low,
        "p_high": placement.high,
        "p_stage": STAGE_ORDER[placement.from_stage] + 1,
        "p_roll": 2 + 16 * placement.layer,
        "p_arm": 3 + 16 * index,
    }
    sql = f"""
INSERT INTO personalization_exposure (session_id, variant_id, experiment_id, variant_version, exposed_at)
SELECT s.id, (%(p_variants)s::bigint[])[pick.n], %(p_experiment)s::bigint, %(p_version)s,
       s.started_at + interval '5 seconds'
FROM journeys_journeysession s
CROSS JOIN LATERAL (
    SELECT abs(hashint8extended(s.id, %(seed)s + %(p_roll)s)) %% 1000 AS roll,
           abs(hashint8extended(s.id, %(seed)s + %(p_arm)s)) AS draw,
           CASE WHEN s.max_stage IN {CONVERTING} THEN %(p_cum_conv)s::int[] ELSE %(p_cum)s::int[] END AS cum
) r
CROSS JOIN LATERAL (
    SELECT min(i) AS n FROM generate_subscripts(r.cum, 1) i WHERE r.draw %% r.cum[array_length(r.cum, 1)] < r.cum[i]
) pick
WHERE s.site_id = %(site)s AND s.id > %(after)s AND r.roll >= %(p_low)s AND r.roll < %(p_high)s
  AND array_position({STAGES}, s.max_stage) >= %(p_stage)s
"""
    return sql, params


def _cue_sql(index: int, cue: Cue) -> list[tuple[str, str, dict]]:
    """Holdout memberships and claims of one rule."""
    share = cue.holdout_share
    params = {
        "c_rule": cue.rule,
        "c_version": cue.version,
        "c_trigger": cue.trigger_type,
        "c_text": cue.text,
        "c_number": "{" + cue.number + "}" if cue.number else "",
        "c_key": cue.evidence_key,
        "c_low": cue.low,
        "c_high": cue.high,
        "c_share": share,
        "c_share_conv": share if cue.converting_holdout_share is None else cue.converting_holdout_share,
        "c_stage": STAGE_ORDER[cue.from_stage] + 1,
        "c_since": cue.since,
        "c_ends_at": cue.ends_at,
        "c_bucket": 4 + 16 * index,
        "c_shown": 5 + 16 * index,
    }
    memberships = f"""
INSERT INTO personalization_holdoutmembership (rule_id, session_id, in_holdout, bucket, assigned_at)
SELECT %(c_rule)s, s.id,
       b.bucket < CASE WHEN s.max_stage IN {CONVERTING} THEN %(c_share_conv)s ELSE %(c_share)s END,
       b.bucket, s.started_at + interval '2 minutes'
FROM journeys_journeysession s
CROSS JOIN LATERAL (SELECT (abs(hashint8extended(s.id, %(seed)s + %(c_bucket)s)) %% 1000) / 1000.0 AS bucket) b
WHERE s.site_id = %(site)s AND s.id > %(after)s AND array_position({STAGES}, s.max_stage) >= %(c_stage)s
  AND (%(c_since)s::timestamptz IS NULL OR s.started_at >= %(c_since)s::timestamptz)
"""
    # The number changes every hour (the same for everyone who saw the cue that hour).
    claims = """
INSERT INTO personalization_claimledger (session_id, rule_id, rule_version, trigger_type, text, evidence,
    evidence_measured_at, ends_at, shown_at)
SELECT h.session_id, h.rule_id, %(c_version)s, %(c_trigger)s,
       CASE WHEN %(c_number)s::text = '' THEN %(c_text)s::text
            ELSE replace(%(c_text)s::text, %(c_number)s::text, n.value::text) END,
       CASE WHEN %(c_ends_at)s::timestamptz IS NOT NULL THEN jsonb_build_object('ends_at', %(c_ends_at)s::timestamptz)
            WHEN %(c_key)s::text = '' THEN '{}'::jsonb
            ELSE jsonb_build_object(%(c_key)s::text, n.value) END,
       h.assigned_at, %(c_ends_at)s::timestamptz, h.assigned_at + shown * interval '1 minute'
FROM personalization_holdoutmembership h
CROSS JOIN LATERAL generate_series(1, 1 + abs(hashint8extended(h.session_id, %(seed)s + %(c_shown)s)) %% 2) shown
CROSS JOIN LATERAL (
    SELECT %(c_low)s + abs(hashint8extended(floor(extract(epoch FROM h.assigned_at) / 3600)::bigint,
                                            %(seed)s + %(c_shown)s)) %% (%(c_high)s - %(c_low)s + 1) AS value
) n
WHERE h.rule_id = %(c_rule)s AND NOT h.in_holdout AND h.session_id > %(after)s
"""
    return [(f"holdout memberships {index + 1}", memberships, params), (f"claims {index + 1}", claims, params)]


def _fill(
    *,
    site: Site,
    catalog: Catalog,
    sessions: int,
    touchpoints_per_session: int,
    first: datetime,
    end: datetime,
    seed: int,
    prefix: str,
    log,
) -> BulkResult:
    m = touchpoints_per_session
    # A session's touchpoints (30 s apart) and its purchase (at most an hour in) end before ``end``.
    span = int((end - first).total_seconds()) - (m * 30 + 3700)
    if span <= 0:
        raise ValueError("the period is too short for the sessions to end within it")
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM journeys_journeysession")
        after = cursor.fetchone()[0]
    params = {
        "site": site.pk,
        "seed": seed,
        "n": sessions,
        "m": m,
        "first": first,
        "span": span,
        "now": datetime.now(UTC),
        "prefix": prefix,
        "after": after,
        "links": max(1, sessions // 20),
        "urls": list(catalog.page_urls),
        "title": catalog.page_title,
        "sku": catalog.sku,
        "order_values": list(catalog.order_values),
        "currency": catalog.currency,
    }
    product = "jsonb_build_object('sku', %(sku)s::text)" if catalog.sku else "'{}'::jsonb"
    if catalog.order_values:
        value = (
            "(%(order_values)s::numeric[])"
            "[1 + abs(hashint8extended(s.id, %(seed)s)) %% cardinality(%(order_values)s::numeric[])]"
        )
    else:
        value = "10 + abs(hashint8extended(s.id, %(seed)s)) %% 19000 / 100.0"
    sku_data = "jsonb_build_object('sku', %(sku)s::text)" if catalog.sku else "NULL::jsonb"
    steps = [
        (
            "visitors",
            f"""
INSERT INTO journeys_visitor (site_id, visitor_id, consent_personalization, consent_cross_device, persona,
    scarcity_sensitivity, user_key, session_count, first_seen_at, last_seen_at)
SELECT %(site)s, %(prefix)s || g, true, {_h(1)} %% 10 = 0,
       (ARRAY['TechEarlyAdopter','StudentHustler','BusinessOwner','Researcher','BargainHunter',''])[1 + {_h(2)} %% 6],
       ({_h(3)} %% 101) / 100.0, '', 1, %(now)s, %(now)s
FROM generate_series(1, %(n)s) g
""",
            {},
        ),
        (
            "cross-device links",
            """
INSERT INTO journeys_crossdevicelink (site_id, unified_journey_id, identifier_hash, method, device_sequence,
    created_at, updated_at)
SELECT %(site)s, gen_random_uuid(), md5(%(prefix)s || g), 'email', '["mobile", "desktop"]', %(now)s, %(now)s
FROM generate_series(1, %(links)s) g
""",
            {},
        ),
        (
            "sessions",
            f"""
WITH base AS (
    SELECT g, v.id AS visitor_id, v.persona, {_h(4)} %% 100 AS device_roll, {_h(5)} %% 100 AS stage_roll,
           {_h(6)} %% 10 = 0 AS is_returning,
           %(first)s::timestamptz + ({_h(7)} %% %(span)s) * interval '1 second' AS started_at
    FROM generate_series(1, %(n)s) g
    JOIN journeys_visitor v ON v.site_id = %(site)s AND v.visitor_id = %(prefix)s || g
), shaped AS (
    SELECT base.*,
           CASE WHEN device_roll < 55 THEN 'mobile' WHEN device_roll < 85 THEN 'desktop' ELSE 'tablet' END AS device,
           CASE WHEN stage_roll < 45 THEN 1 WHEN stage_roll < 70 THEN 2 WHEN stage_roll < 85 THEN 3
                WHEN stage_roll < 97 THEN 4 ELSE 5 END AS reached
    FROM base
)
INSERT INTO journeys_journeysession (site_id, visitor_id, session_id, persona_type, persona_confidence,
    persona_source, device_type, device_screen, device_fingerprint_hash, source, "returning", started_at,
    last_activity_at, ended_at, current_stage, max_stage, journey_path, conversion_probability, total_touchpoints,
    total_session_time, entry_point, utm, referrer, intent_signals, engagement, metadata, cross_device_link_id,
    request_hash, created_at, updated_at)
SELECT %(site)s, visitor_id, %(prefix)s || g, persona, CASE WHEN persona = '' THEN NULL ELSE 0.7 END,
       CASE WHEN persona = '' THEN '' ELSE 'rules' END, device, '', '',
       CASE WHEN device = 'mobile' THEN 'tiktok' ELSE 'google' END, is_returning, started_at,
       started_at + %(m)s * interval '30 seconds', started_at + %(m)s * interval '30 seconds',
       ({STAGES})[reached], ({STAGES})[reached],
       CASE WHEN device = 'mobile' THEN 'mobile_tiktok_fast_track'
            WHEN device = 'desktop' THEN 'desktop_research_deep'
            WHEN is_returning THEN 'returning_visitor_personalized'
            ELSE 'standard_conversion_funnel' END,
       0.1 + reached * 0.15, %(m)s, %(m)s * 30, '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}',
       CASE WHEN g %% 20 = 0 THEN (
           SELECT id FROM journeys_crossdevicelink
           WHERE site_id = %(site)s AND identifier_hash = md5(%(prefix)s || g / 20)
       ) END,
       md5(%(prefix)s || g), %(now)s, %(now)s
FROM shaped
""",
            {},
        ),
        (
            "transitions",
            f"""
INSERT INTO journeys_stagetransition (session_id, from_stage, to_stage, trigger_event, engagement, context,
    conversion_probability, created_at)
SELECT s.id, coalesce(({STAGES})[step], ''), ({STAGES})[step + 1], 'bulk', '{{}}', '{{}}', 0.2,
       s.started_at + step * interval '1 minute'
FROM journeys_journeysession s
CROSS JOIN LATERAL generate_series(0, array_position({STAGES}, s.max_stage) - 1) step
WHERE s.site_id = %(site)s AND s.id > %(after)s
""",
            {},
        ),
        (
            "conversions",
            f"""
INSERT INTO journeys_conversionevent (site_id, session_id, event_id, type, value, currency, funnel_step, product,
    attribution, payload_hash, converted_at)
SELECT %(site)s, s.id, md5('c' || s.id)::uuid, 'purchase', {value}, %(currency)s, '', {product}, '{{}}', 'bulk',
       s.started_at + (300 + abs(hashint8extended(s.id, %(seed)s + 1)) %% 3300) * interval '1 second'
FROM journeys_journeysession s
WHERE s.site_id = %(site)s AND s.id > %(after)s AND s.max_stage IN {CONVERTING}
""",
            {},
        ),
    ]
    for index, placement in enumerate(catalog.placements):
        sql, extra = _placement_sql(index, placement)
        steps.append((f"exposures {index + 1}", sql, extra))
    steps.append(
        (
            "personalization records",
            f"""
INSERT INTO personalization_personalizationrecord (session_id, personalization_type, strategy, variant_id,
    content_delivered, user_response, engagement_time, conversion_attributed, model_version, confidence,
    created_at)
SELECT e.session_id, 'content',
       CASE s.journey_path WHEN 'mobile_tiktok_fast_track' THEN 'viral_hook_replication'
            WHEN 'desktop_research_deep' THEN 'comparison_table'
            WHEN 'returning_visitor_personalized' THEN 'personalized_offer'
            ELSE 'standard_personalization' END,
       e.variant_id, '{{}}', '{{}}', abs(hashint8extended(e.id, %(seed)s)) %% 300,
       s.max_stage IN {CONVERTING}, 'bulk', (abs(hashint8extended(e.id, %(seed)s + 1)) %% 100) / 100.0,
       e.exposed_at
FROM personalization_exposure e JOIN journeys_journeysession s ON s.id = e.session_id
WHERE s.site_id = %(site)s AND s.id > %(after)s
""",
            {},
        )
    )
    for index, cue in enumerate(catalog.cues):
        steps.extend(_cue_sql(index, cue))
    steps.append(
        (
            "touchpoints",
            f"""
INSERT INTO journeys_touchpoint (site_id, session_id, event_id, sequence, type, page_url, page_title,
    interaction_type, interaction_data, engagement_score, duration_seconds, scroll_depth, click_count,
    conversion_value, client_timestamp, received_at, payload_hash)
SELECT %(site)s, s.id, md5(s.id || '-' || t)::uuid, t, k.type,
       (%(urls)s::text[])[1 + (s.id * 7 + t) %% cardinality(%(urls)s::text[])], %(title)s, '',
       CASE WHEN k.type = 'add_to_cart' THEN {sku_data} END,
       ((s.id + t) %% 100) / 100.0, (s.id + t) %% 120, ((s.id * 3 + t) %% 100) / 100.0, (s.id + t) %% 4, 0,
       s.started_at + t * interval '30 seconds', s.started_at + t * interval '30 seconds' + interval '1 second',
       'bulk'
FROM journeys_journeysession s CROSS JOIN generate_series(1, %(m)s) t
CROSS JOIN LATERAL (
    SELECT (ARRAY['page_view','page_view','page_view','scroll','click','add_to_cart'])[1 + (s.id + t) %% 6] AS type
) k
WHERE s.site_id = %(site)s AND s.id > %(after)s
ORDER BY s.started_at, t
""",
            {},
        )
    )
    result = BulkResult(site.pk)
    for name, sql, extra in steps:
        if name == "touchpoints" and m == 0:
            continue
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(sql, {**params, **extra})
            result.counts[name] = cursor.rowcount
        result.seconds[name] = time.monotonic() - started
        log(f"   {name}: {result.counts[name]:,} rows in {result.seconds[name]:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE journeys_journeysession, journeys_touchpoint, journeys_stagetransition, "
            "journeys_conversionevent, personalization_exposure, personalization_personalizationrecord, "
            "personalization_holdoutmembership, personalization_claimledger"
        )
    return result
