"""Statements that mark their own (site, day) skip the raw-table triggers' marking.

The decision's write and the stage move touch several raw tables in one statement, all
rows of one session; each table's trigger would append the same mark again (and look
the session up again to find it). Such a statement appends the mark itself, once, and
sets ``analytics.rollup_marked_at`` to its own ``statement_timestamp()`` (transaction-
local); the triggers skip a statement whose timestamp is the one set. Any other
statement, later in the same transaction included, is marked by the triggers as before.
"""

from django.db import migrations

SESSION_TABLE = "journeys_journeysession"
DAY = "(started_at AT TIME ZONE 'UTC')::date"
SKIP = (
    "IF current_setting('analytics.rollup_marked_at', true) = statement_timestamp()::text THEN\n"
    "        RETURN NULL;\n"
    "    END IF;"
)

FORWARD = f"""
CREATE OR REPLACE FUNCTION analytics_dirty_from_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {SKIP}
    IF TG_OP = 'INSERT' THEN
        INSERT INTO analytics_rollupdirtyday (site_id, day) SELECT DISTINCT site_id, {DAY} FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO analytics_rollupdirtyday (site_id, day)
        SELECT site_id, {DAY} FROM new_rows UNION SELECT site_id, {DAY} FROM old_rows;
    ELSE
        INSERT INTO analytics_rollupdirtyday (site_id, day) SELECT DISTINCT site_id, {DAY} FROM old_rows;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION analytics_dirty_from_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {SKIP}
    IF TG_OP = 'INSERT' THEN
        INSERT INTO analytics_rollupdirtyday (site_id, day)
        SELECT DISTINCT s.site_id, (s.started_at AT TIME ZONE 'UTC')::date FROM {SESSION_TABLE} s
        WHERE s.id IN (SELECT session_id FROM new_rows);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO analytics_rollupdirtyday (site_id, day)
        SELECT DISTINCT s.site_id, (s.started_at AT TIME ZONE 'UTC')::date FROM {SESSION_TABLE} s
        WHERE s.id IN (SELECT session_id FROM new_rows UNION SELECT session_id FROM old_rows);
    ELSE
        INSERT INTO analytics_rollupdirtyday (site_id, day)
        SELECT DISTINCT s.site_id, (s.started_at AT TIME ZONE 'UTC')::date FROM {SESSION_TABLE} s
        WHERE s.id IN (SELECT session_id FROM old_rows);
    END IF;
    RETURN NULL;
END $$;
"""


def _backward() -> str:
    from importlib import import_module

    return import_module("analytics.migrations.0003_rollup_triggers").FUNCTIONS.replace(
        "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
    )


class Migration(migrations.Migration):
    dependencies = [("analytics", "0003_rollup_triggers")]

    operations = [migrations.RunSQL(FORWARD, _backward())]
