"""Change capture for the rollups: raw-table writes mark their (site, start day) dirty.

Statement-level AFTER triggers with transition tables append one row per distinct
(site, day) a statement touched to ``analytics_rollupdirtyday``, in the writer's own
transaction: a mark commits (or rolls back) together with the change it announces.
``analytics.rollups`` explains why this makes the rollups exact.
"""

from django.db import migrations

SESSION_TABLE = "journeys_journeysession"
CHILD_TABLES = [
    "journeys_stagetransition",
    "journeys_conversionevent",
    "personalization_exposure",
    "personalization_personalizationrecord",
    "personalization_holdoutmembership",
    "personalization_claimledger",
]

DAY = "(started_at AT TIME ZONE 'UTC')::date"

FUNCTIONS = f"""
CREATE FUNCTION analytics_dirty_from_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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

CREATE FUNCTION analytics_dirty_from_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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


def _triggers(table: str, function: str) -> str:
    return "\n".join(
        [
            f"CREATE TRIGGER analytics_dirty_ins AFTER INSERT ON {table} "
            f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();",
            f"CREATE TRIGGER analytics_dirty_upd AFTER UPDATE ON {table} "
            f"REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();",
            f"CREATE TRIGGER analytics_dirty_del AFTER DELETE ON {table} "
            f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}();",
        ]
    )


def _drop(table: str) -> str:
    return "\n".join(f"DROP TRIGGER IF EXISTS analytics_dirty_{op} ON {table};" for op in ("ins", "upd", "del"))


FORWARD = "\n".join(
    [
        FUNCTIONS,
        _triggers(SESSION_TABLE, "analytics_dirty_from_sessions"),
        *(_triggers(table, "analytics_dirty_from_children") for table in CHILD_TABLES),
        # Every existing session's day starts dirty, so the first run builds the rollups.
        f"INSERT INTO analytics_rollupdirtyday (site_id, day) SELECT DISTINCT site_id, {DAY} FROM {SESSION_TABLE};",
    ]
)
BACKWARD = "\n".join(
    [
        *(_drop(table) for table in [SESSION_TABLE, *CHILD_TABLES]),
        "DROP FUNCTION IF EXISTS analytics_dirty_from_sessions();",
        "DROP FUNCTION IF EXISTS analytics_dirty_from_children();",
    ]
)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0002_rollups"),
        ("journeys", "0003_touchpoint_received_brin"),
        ("personalization", "0004_scarcity_approval_template"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
