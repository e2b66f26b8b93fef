"""Retention: raw touchpoints older than the retention period are purged; rollups stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics.models import RollupDirtyDay, SessionDaily
from analytics.retention import touchpoints_purge
from analytics.rollups import rollups_update
from analytics.tasks import touchpoints_purge_task
from journeys.models import Touchpoint
from tests.analytics.rollup_helpers import convert, rollup_rows, session

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def touchpoints(row, *received_at) -> list[Touchpoint]:
    return Touchpoint.objects.bulk_create(
        Touchpoint(
            site=row.site,
            session=row,
            event_id=uuid.uuid4(),
            sequence=index,
            type="page_view",
            client_timestamp=at,
            received_at=at,
            payload_hash="p",
        )
        for index, at in enumerate(received_at, start=1)
    )


def test_purge_removes_only_touchpoints_older_than_retention_and_rollups_stay(site, settings):
    # Given touchpoints of an old session and of a recent one, rolled up
    settings.TOUCHPOINT_RETENTION_DAYS = 30
    now = timezone.now()
    old_start = now - timedelta(days=40)
    old = session(site, "old", at=old_start, touchpoints=3)
    convert(old, "30.00", at=old_start + timedelta(minutes=5))
    recent = session(site, "recent", at=now - timedelta(days=2), touchpoints=2)
    touchpoints(old, old_start, old_start + timedelta(minutes=1), now - timedelta(days=30, minutes=1))
    kept = touchpoints(recent, now - timedelta(days=29, hours=23), now - timedelta(days=2))
    rollups_update()
    before = rollup_rows()

    # When the daily purge task runs
    purged = touchpoints_purge_task.delay().get()

    # Then exactly the touchpoints received before the cutoff are gone
    assert purged == 3
    assert sorted(Touchpoint.objects.values_list("pk", flat=True)) == sorted(t.pk for t in kept)
    # And the rollups did not change, nothing was marked dirty, and neither a later run
    # nor a recompute of the purged day changes them
    assert rollup_rows() == before
    assert RollupDirtyDay.objects.count() == 0
    assert rollups_update().keys == 0
    call_command("rollups_recompute")
    assert rollup_rows() == before
    row = SessionDaily.objects.get(day=old_start.date())
    assert (row.sessions, row.touchpoints, row.revenue) == (1, 3, 30)


def test_purge_works_in_batches_and_is_safe_to_run_twice(site):
    now = timezone.now()
    old = session(site, "old", at=now - timedelta(days=10))
    touchpoints(old, *(now - timedelta(days=10, minutes=n) for n in range(5)))
    assert touchpoints_purge(retention_days=7, now=now, batch_size=2) == 5
    assert touchpoints_purge(retention_days=7, now=now, batch_size=2) == 0
    assert not Touchpoint.objects.exists()
