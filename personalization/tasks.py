from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from personalization.services.optimizer import experiments_optimize
from personalization.services.scarcity import scarcity_evidence_refresh, scarcity_monitor, scarcity_sensitivity_learn


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    # A pass queued longer than a window is replaced by the next beat's.
    expires=settings.OPTIMIZER_CADENCE_MINUTES * 60,
)
def optimize_experiments_task(site_id: int | None = None) -> int:
    """One optimizer pass; safe to run twice (idempotent per window). Returns new proposals."""
    return len(experiments_optimize(site_id=site_id))


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    # a pass queued longer than its cadence is replaced by the next beat's
    expires=settings.SCARCITY_EVIDENCE_SECONDS,
)
def scarcity_evidence_task(site_id: int | None = None) -> int:
    """Recount the evidence of every live scarcity rule; safe to run twice. Returns rules measured."""
    return scarcity_evidence_refresh(site_id=site_id)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    expires=settings.SCARCITY_MONITOR_MINUTES * 60,
)
def scarcity_monitor_task() -> int:
    """Raise or update the scarcity monitor's flags; safe to run twice. Returns flags touched."""
    return len(scarcity_monitor())


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
    expires=settings.SCARCITY_MONITOR_MINUTES * 60,
)
def scarcity_sensitivity_task() -> int:
    """Learn visitors' scarcity sensitivity from scored sessions; each session once. Returns sessions scored."""
    return scarcity_sensitivity_learn()
