"""Database plumbing for the hot paths."""

from __future__ import annotations

from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor


def prepared_cursor():
    """A Django cursor whose statements PostgreSQL prepares once per connection.

    Django's PostgreSQL cursor puts every parameter into the SQL text on the client
    (so it works behind any connection pooler), and then PostgreSQL parses and plans
    each statement anew: for the decision's write, more CPU than executing it. This
    cursor sends the parameters apart (server-side binding), so psycopg prepares a
    statement after ``prepare_threshold`` runs (``DB_PREPARED_STATEMENTS``) and later
    runs only execute it. Only the hot statements (session read, decision write, stage
    move) use it; their parameters carry explicit casts, so each has one prepared form.
    It is wrapped like any other Django cursor: query logging and execute wrappers see it.
    """
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))
