"""Statements that mark their own (site, day) skip the raw-table triggers' marking.

The decision's write and the stage move touch several raw tables in one statement, all
rows of one session; each table's trigger would append the same mark again (and look
the session up again to find it). Such a statement appends the mark itself, once, and
sets ``analytics.rollup_marked_at`` to its own ``statement_timestamp()`` (transaction-
local); the triggers skip a statement whose timestamp is the one set. Any other
statement, later in the same transaction included, is marked by the triggers as before.
"""

from importlib import import_module

from django.db import migrations

FUNCTIONS = import_module("analytics.migrations.0003_rollup_triggers").FUNCTIONS.replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
)
SKIP = """BEGIN
    IF current_setting('analytics.rollup_marked_at', true) = statement_timestamp()::text THEN
        RETURN NULL;
    END IF;
"""
FORWARD = FUNCTIONS.replace("BEGIN\n", SKIP)
assert FORWARD.count(SKIP) == 2, "both trigger functions skip statements that marked themselves"


class Migration(migrations.Migration):
    dependencies = [("analytics", "0003_rollup_triggers")]

    operations = [migrations.RunSQL(FORWARD, FUNCTIONS)]
