"""A backlog of idle sessions, written with set-based SQL (the idle-session benchmark and its tests).

``idle_sessions_insert`` writes ``count`` open sessions of one site, each with its own
visitor and ``touchpoints`` touchpoints (the last one a click on the checkout page), all
last active at ``last_activity_at``: what a worker outage leaves for idle-session
closing. 200,000 take seconds, not the minutes the ORM would.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction

from journeys.models import JourneySession, Site, Touchpoint, Visitor

CHECKOUT_URL = "https://shop.example/checkout"
PRODUCT_URL = "https://shop.example/p/{}"


def idle_sessions_insert(
    site: Site,
    count: int,
    *,
    last_activity_at: datetime,
    session_seconds: int = 600,
    touchpoints: int = 2,
    prefix: str = "idle",
) -> None:
    """``count`` open sessions ``{prefix}-s-1..count`` of ``site``, started ``session_seconds``
    before ``last_activity_at``, stage ``consideration``, with ``touchpoints`` each: page
    views of a product page, then a click on ``CHECKOUT_URL`` (the last one)."""
    started_at = last_activity_at - timedelta(seconds=session_seconds)
    params = {
        "site": site.pk,
        "count": count,
        "prefix": prefix,
        "started": started_at,
        "last": last_activity_at,
        "touchpoints": touchpoints,
        "checkout": CHECKOUT_URL,
        "product": PRODUCT_URL.format(""),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Visitor._meta.db_table} (site_id, visitor_id, consent_personalization, consent_cross_device,
                persona, scarcity_sensitivity, user_key, session_count, first_seen_at, last_seen_at)
            SELECT %(site)s, %(prefix)s || '-v-' || g, true, false, '', 0.5, '', 1, %(started)s, %(last)s
            FROM generate_series(1, %(count)s) AS g
            """,
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO {JourneySession._meta.db_table} (site_id, visitor_id, session_id, persona_type, persona_source,
                device_type, device_screen, device_fingerprint_hash, source, "returning", started_at, last_activity_at,
                current_stage, max_stage, journey_path, conversion_probability, total_touchpoints, total_session_time,
                entry_point, utm, referrer, intent_signals, engagement, metadata, request_hash, created_at, updated_at)
            SELECT %(site)s, v.id, %(prefix)s || '-s-' || g, '', '', 'desktop', '', '', 'google', false,
                %(started)s, %(last)s, 'consideration', 'consideration', 'standard_conversion_funnel', 0.1,
                %(touchpoints)s, 0, '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', md5(%(prefix)s || g),
                %(started)s, %(last)s
            FROM generate_series(1, %(count)s) AS g
            JOIN {Visitor._meta.db_table} v ON v.site_id = %(site)s AND v.visitor_id = %(prefix)s || '-v-' || g
            """,
            params,
        )
        if touchpoints:
            cursor.execute(
                f"""
                INSERT INTO {Touchpoint._meta.db_table} (site_id, session_id, event_id, sequence, type, page_url,
                    page_title, interaction_type, click_count, conversion_value, client_timestamp, received_at,
                    payload_hash)
                SELECT %(site)s, s.id, gen_random_uuid(), n,
                    CASE WHEN n = %(touchpoints)s THEN 'click' ELSE 'page_view' END,
                    CASE WHEN n = %(touchpoints)s THEN %(checkout)s ELSE %(product)s || n END,
                    '', '', 0, 0, %(last)s, %(last)s, md5(s.session_id || n)
                FROM {JourneySession._meta.db_table} s, generate_series(1, %(touchpoints)s) AS n
                WHERE s.site_id = %(site)s AND s.session_id LIKE %(prefix)s || '-s-%%'
                """,
                params,
            )
