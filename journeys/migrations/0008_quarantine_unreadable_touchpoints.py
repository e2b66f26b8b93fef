"""Touchpoints stored before client timestamps were bounded, with a timestamp outside the
years 1 to 9999 in UTC (``0001-01-01T00:00:00+14:00`` is in 1 BC), cannot be read back by
Python: every page that loads them (the visitor export, the admin session page) failed.
They move to the quarantine with their payload and the reason, as such an event is
quarantined now, and their sessions' touchpoint counts follow."""

from django.db import migrations

REASON = (
    '{"timestamp": ["Timestamp is out of the range that can be read back; moved here from the stored touchpoints."]}'
)

QUARANTINE_UNREADABLE = f"""
WITH moved AS (
    DELETE FROM journeys_touchpoint
    WHERE client_timestamp < '0001-01-01 00:00:00+00' OR client_timestamp >= '10000-01-01 00:00:00+00'
    RETURNING *
), recounted AS (
    UPDATE journeys_journeysession AS s SET total_touchpoints = GREATEST(s.total_touchpoints - m.n, 0)
    FROM (SELECT session_id, count(*) AS n FROM moved GROUP BY session_id) AS m
    WHERE s.id = m.session_id
)
INSERT INTO journeys_quarantinedevent (site_id, endpoint, event_id, batch_index, raw_payload, raw_text, reason, received_at)
SELECT m.site_id, 'events', m.event_id::text, NULL,
       COALESCE(m.metadata, '{{}}'::jsonb) || jsonb_strip_nulls(jsonb_build_object(
           'event_id', m.event_id::text, 'session_id', s.session_id, 'type', m.type,
           'timestamp', m.client_timestamp::text, 'page_url', m.page_url, 'page_title', m.page_title,
           'interaction_type', m.interaction_type, 'interaction_data', m.interaction_data,
           'engagement_score', m.engagement_score, 'duration_seconds', m.duration_seconds,
           'scroll_depth', m.scroll_depth, 'click_count', m.click_count,
           'conversion_value', m.conversion_value::text, 'device_context', m.device_context)),
       '', '{REASON}'::jsonb, m.received_at
FROM moved AS m JOIN journeys_journeysession AS s ON s.id = m.session_id
"""


def quarantine_unreadable(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(QUARANTINE_UNREADABLE)


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0007_privacy_permissions"),
    ]

    operations = [
        migrations.RunPython(quarantine_unreadable, migrations.RunPython.noop),
    ]
