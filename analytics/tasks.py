"""Celery tasks of the analytics app: thin callers of its services."""

from django.conf import settings

from analytics.conversion_training import conversion_models_train
from analytics.monitor import monitor_counters_publish
from analytics.retention import touchpoints_purge
from analytics.rollups import rollups_update
from core.tasks import periodic_task


@periodic_task(expires=settings.MONITOR_COUNTERS_SECONDS, max_retries=1, time_limit=30, soft_time_limit=25)
def monitor_counters_task() -> int:
    """Count and send the live monitor's counters; safe to run twice. Returns sites sent."""
    return monitor_counters_publish()


@periodic_task(expires=3600)
def train_conversion_models_task(site_id: int | None = None) -> int:
    """Train each site's conversion model on its own history; safe to run twice (the same
    data again stores nothing). Returns the models stored, activated or not."""
    return sum(outcome.status != "skipped" for outcome in conversion_models_train(site_id=site_id))


@periodic_task(expires=60)
def rollups_update_task() -> int:
    """Recompute the rollup keys marked dirty; safe to run twice or to kill. Returns keys recomputed."""
    return rollups_update().keys


@periodic_task(expires=3600)
def touchpoints_purge_task() -> int:
    """Purge raw touchpoints older than TOUCHPOINT_RETENTION_DAYS; rollups stay. Returns rows purged."""
    return touchpoints_purge(retention_days=settings.TOUCHPOINT_RETENTION_DAYS)
