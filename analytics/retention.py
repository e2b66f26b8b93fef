"""The retention period of PRODUCT.md section 8: raw touchpoints older than it are purged.

Rollups stay: they never read raw touchpoints (a session's ``total_touchpoints`` is
what they count, see ``analytics.rollups``), and the touchpoint table carries no
rollup trigger. So a purge changes no rollup row, marks no key dirty, and a later
incremental run or ``rollups_recompute`` of a purged day gives the same numbers as
before the purge: nothing can be counted twice or lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from journeys.models import Touchpoint


def touchpoints_purge(*, retention_days: int, now: datetime | None = None, batch_size: int = 10_000) -> int:
    """Delete touchpoints received before ``now - retention_days``; returns how many.

    One short transaction per batch, so the purge never holds many row locks or one
    long snapshot, and a killed purge keeps the batches it committed (it is safe to run
    again: it deletes what is still old). The batches are found through the BRIN index
    on ``received_at``.
    """
    cutoff = (now or timezone.now()) - timedelta(days=retention_days)
    table = Touchpoint._meta.db_table
    purged = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE received_at < %s LIMIT %s)",
                [cutoff, batch_size],
            )
            deleted = cursor.rowcount
        purged += deleted
        if deleted < batch_size:
            return purged
