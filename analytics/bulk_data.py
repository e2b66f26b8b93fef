"""Bulk synthetic traffic for one new site, generated inside PostgreSQL.

Every table is filled by one ``INSERT ... SELECT ... FROM generate_series`` statement,
so a million sessions with ten million touchpoints take minutes, not hours, and no row
crosses the network. Values come from ``hashint8extended(i, seed)``: the same seed
gives the same traffic on every run (up to the generated ids and uuids' order).

The shape follows PRODUCT.md section 3: devices and sources choose paths, sessions
stop at a furthest stage (45% awareness, 25% consideration, 15% decision, 12%
conversion, 3% retention) with one transition per move, sessions that reach
``conversion`` have a purchase, most sessions see one of two experiments' variants
and get a personalization record, and sessions that reach ``decision`` are eligible for
a low-stock cue (10% held out). Touchpoints are spread over the session, 30 s apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal

from django.db import connection, transaction

from journeys.services.sites import site_create
from personalization.models import ContentVariant, Experiment, ExperimentArm, Offer, ScarcityRule, Slot

STRATEGIES = {
    "mobile_tiktok_fast_track": "viral_hook_replication",
    "desktop_research_deep": "comparison_table",
    "returning_visitor_personalized": "personalized_offer",
    "standard_conversion_funnel": "standard_personalization",
}


@dataclass
class BulkResult:
    site_id: int
    counts: dict[str, int]
    seconds: dict[str, float]


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
        return _generate(
            sessions=sessions,
            touchpoints_per_session=touchpoints_per_session,
            days=days,
            seed=seed,
            last_day=last_day,
            log=log,
        )


def _generate(*, sessions: int, touchpoints_per_session: int, days: int, seed: int, last_day: date, log) -> BulkResult:
    token = f"{seed}-{sessions}-{touchpoints_per_session}-{days}-{last_day:%Y%m%d}"
    site = site_create(name=f"bulk {token}", domain=f"bulk-{token}.invalid")
    slot = Slot.objects.create(site=site, key="hero", name="Hero")
    variants = []
    experiments = []
    for number in (1, 2):
        experiment = Experiment.objects.create(site=site, key=f"exp-{number}", name=f"Experiment {number}", slot=slot)
        experiments.append(experiment.pk)
        for letter in "ab":
            variant = ContentVariant.objects.create(
                site=site, slot=slot, key=f"exp-{number}-{letter}", name=f"{number}{letter}"
            )
            ExperimentArm.objects.create(experiment=experiment, variant=variant, is_control=letter == "a")
            variants.append(variant.pk)
    offer = Offer.objects.create(site=site, name="Earbuds", sku="A1", price=Decimal("49.90"))
    rule = ScarcityRule.objects.create(
        site=site,
        key="low-stock",
        name="Low stock",
        trigger_type="low_stock",
        offer=offer,
        message_template="Only {stock} left",
    )
    first = datetime.combine(last_day - timedelta(days=days - 1), dtime.min, tzinfo=UTC)
    params = {
        "site": site.pk,
        "seed": seed,
        "n": sessions,
        "m": touchpoints_per_session,
        "days": days,
        "first": first,
        "now": datetime.now(UTC),
        "prefix": f"b{seed}-",
        "v": variants,
        "e": experiments,
        "rule": rule.pk,
        "links": max(1, sessions // 20),
    }
    stages = "ARRAY['awareness','consideration','decision','conversion','retention']"
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
        ),
        (
            "cross-device links",
            """
INSERT INTO journeys_crossdevicelink (site_id, unified_journey_id, identifier_hash, method, device_sequence,
    created_at, updated_at)
SELECT %(site)s, gen_random_uuid(), md5(%(prefix)s || g), 'email', '["mobile", "desktop"]', %(now)s, %(now)s
FROM generate_series(1, %(links)s) g
""",
        ),
        (
            "sessions",
            f"""
WITH base AS (
    SELECT g, v.id AS visitor_id, v.persona, {_h(4)} %% 100 AS device_roll, {_h(5)} %% 100 AS stage_roll,
           {_h(6)} %% 10 = 0 AS is_returning,
           %(first)s::timestamptz + ({_h(7)} %% %(days)s) * interval '1 day'
               + ({_h(8)} %% 86400) * interval '1 second' AS started_at
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
    last_activity_at, current_stage, max_stage, journey_path, conversion_probability, total_touchpoints,
    total_session_time, entry_point, utm, referrer, intent_signals, engagement, metadata, cross_device_link_id,
    request_hash, created_at, updated_at)
SELECT %(site)s, visitor_id, %(prefix)s || g, persona, CASE WHEN persona = '' THEN NULL ELSE 0.7 END,
       CASE WHEN persona = '' THEN '' ELSE 'rules' END, device, '', '',
       CASE WHEN device = 'mobile' THEN 'tiktok' ELSE 'google' END, is_returning, started_at,
       started_at + %(m)s * interval '30 seconds', ({stages})[reached], ({stages})[reached],
       CASE WHEN device = 'mobile' THEN 'mobile_tiktok_fast_track'
            WHEN device = 'desktop' THEN 'desktop_research_deep'
            WHEN is_returning THEN 'returning_visitor_personalized'
            ELSE 'standard_conversion_funnel' END,
       0.1 + reached * 0.15, %(m)s, %(m)s * 30, '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}',
       CASE WHEN g %% 20 = 0 THEN (SELECT min(id) FROM journeys_crossdevicelink WHERE site_id = %(site)s) + g / 20 - 1
       END,
       md5(%(prefix)s || g), %(now)s, %(now)s
FROM shaped
""",
        ),
        (
            "transitions",
            f"""
INSERT INTO journeys_stagetransition (session_id, from_stage, to_stage, trigger_event, engagement, context,
    conversion_probability, created_at)
SELECT s.id, coalesce(({stages})[step], ''), ({stages})[step + 1], 'bulk', '{{}}', '{{}}', 0.2,
       s.started_at + step * interval '1 minute'
FROM journeys_journeysession s
CROSS JOIN LATERAL generate_series(0, array_position({stages}, s.max_stage) - 1) step
WHERE s.site_id = %(site)s
""",
        ),
        (
            "conversions",
            """
INSERT INTO journeys_conversionevent (site_id, session_id, event_id, type, value, currency, funnel_step, product,
    attribution, payload_hash, converted_at)
SELECT %(site)s, s.id, md5('c' || s.id)::uuid, 'purchase', 10 + abs(hashint8extended(s.id, %(seed)s)) %% 19000 / 100.0,
       'EUR', '', '{}', '{}', 'bulk', s.started_at + (60 + abs(hashint8extended(s.id, %(seed)s + 1)) %% 3600)
           * interval '1 second'
FROM journeys_journeysession s
WHERE s.site_id = %(site)s AND s.max_stage IN ('conversion', 'retention')
""",
        ),
        (
            "exposures",
            """
INSERT INTO personalization_exposure (session_id, variant_id, experiment_id, variant_version, exposed_at)
SELECT s.id, (%(v)s::bigint[])[x.experiment * 2 + 1 + x.arm], (%(e)s::bigint[])[x.experiment + 1], 1,
       s.started_at + interval '5 seconds'
FROM journeys_journeysession s
CROSS JOIN LATERAL (
    SELECT abs(hashint8extended(s.id, %(seed)s + 2)) %% 10 AS roll,
           abs(hashint8extended(s.id, %(seed)s + 3)) %% 2 AS arm
) r
CROSS JOIN LATERAL (SELECT CASE WHEN r.roll < 6 THEN 0 ELSE 1 END AS experiment, r.arm) x
WHERE s.site_id = %(site)s AND r.roll < 9
""",
        ),
        (
            "personalization records",
            """
INSERT INTO personalization_personalizationrecord (session_id, personalization_type, strategy, variant_id,
    content_delivered, user_response, engagement_time, conversion_attributed, model_version, confidence,
    created_at)
SELECT e.session_id, 'content',
       CASE s.journey_path WHEN 'mobile_tiktok_fast_track' THEN 'viral_hook_replication'
            WHEN 'desktop_research_deep' THEN 'comparison_table'
            WHEN 'returning_visitor_personalized' THEN 'personalized_offer'
            ELSE 'standard_personalization' END,
       e.variant_id, '{}', '{}', abs(hashint8extended(e.id, %(seed)s)) %% 300,
       s.max_stage IN ('conversion', 'retention'), 'bulk', (abs(hashint8extended(e.id, %(seed)s + 1)) %% 100) / 100.0,
       e.exposed_at
FROM personalization_exposure e JOIN journeys_journeysession s ON s.id = e.session_id
WHERE s.site_id = %(site)s
""",
        ),
        (
            "holdout memberships",
            """
INSERT INTO personalization_holdoutmembership (rule_id, session_id, in_holdout, bucket, assigned_at)
SELECT %(rule)s, s.id, b.bucket < 0.1, b.bucket, s.started_at + interval '2 minutes'
FROM journeys_journeysession s
CROSS JOIN LATERAL (SELECT (abs(hashint8extended(s.id, %(seed)s + 4)) %% 1000) / 1000.0 AS bucket) b
WHERE s.site_id = %(site)s AND s.max_stage IN ('decision', 'conversion', 'retention')
""",
        ),
        (
            "claims",
            """
INSERT INTO personalization_claimledger (session_id, rule_id, rule_version, trigger_type, text, evidence,
    evidence_measured_at, shown_at)
SELECT h.session_id, h.rule_id, 1, 'low_stock', 'Only 3 left', '{"stock_remaining": 3}',
       h.assigned_at, h.assigned_at + shown * interval '1 minute'
FROM personalization_holdoutmembership h
CROSS JOIN LATERAL generate_series(1, 1 + abs(hashint8extended(h.id, %(seed)s)) %% 2) shown
WHERE h.rule_id = %(rule)s AND NOT h.in_holdout
""",
        ),
        (
            "touchpoints",
            """
INSERT INTO journeys_touchpoint (site_id, session_id, event_id, sequence, type, page_url, page_title,
    interaction_type, engagement_score, duration_seconds, scroll_depth, click_count, conversion_value,
    client_timestamp, received_at, payload_hash)
SELECT %(site)s, s.id, md5(s.id || '-' || t)::uuid, t,
       (ARRAY['page_view','page_view','page_view','scroll','click','add_to_cart'])[1 + (s.id + t) %% 6],
       'https://shop.example/p/' || ((s.id * 7 + t) %% 500), 'Product', '',
       ((s.id + t) %% 100) / 100.0, (s.id + t) %% 120, ((s.id * 3 + t) %% 100) / 100.0, (s.id + t) %% 4, 0,
       s.started_at + t * interval '30 seconds', s.started_at + t * interval '30 seconds' + interval '1 second',
       'bulk'
FROM journeys_journeysession s CROSS JOIN generate_series(1, %(m)s) t
WHERE s.site_id = %(site)s
ORDER BY s.started_at, t
""",
        ),
    ]
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for name, sql in steps:
        if name == "touchpoints" and touchpoints_per_session == 0:
            continue
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            counts[name] = cursor.rowcount
        seconds[name] = time.monotonic() - started
        log(f"   {name}: {counts[name]:,} rows in {seconds[name]:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE journeys_journeysession, journeys_touchpoint, journeys_stagetransition, "
            "journeys_conversionevent, personalization_exposure, personalization_personalizationrecord, "
            "personalization_holdoutmembership, personalization_claimledger"
        )
    return BulkResult(site.pk, counts, seconds)
