from django.conf import settings

from core.tasks import periodic_task
from personalization.services.optimizer import experiments_optimize
from personalization.services.scarcity.evidence import scarcity_evidence_refresh
from personalization.services.scarcity.monitor_flags import scarcity_monitor
from personalization.services.scarcity.sensitivity import scarcity_sensitivity_learn


@periodic_task(expires=settings.OPTIMIZER_CADENCE_MINUTES * 60)
def optimize_experiments_task(site_id: int | None = None) -> int:
    """One optimizer pass; safe to run twice (idempotent per window). Returns new proposals."""
    return len(experiments_optimize(site_id=site_id))


@periodic_task(expires=settings.SCARCITY_EVIDENCE_SECONDS, max_retries=3, time_limit=60, soft_time_limit=50)
def scarcity_evidence_task(site_id: int | None = None) -> int:
    """Recount the evidence of every live scarcity rule; safe to run twice. Returns rules measured."""
    return scarcity_evidence_refresh(site_id=site_id)


@periodic_task(expires=settings.SCARCITY_MONITOR_MINUTES * 60, max_retries=3)
def scarcity_monitor_task() -> int:
    """Raise or update the scarcity monitor's flags; safe to run twice. Returns flags touched."""
    return len(scarcity_monitor())


@periodic_task(expires=settings.SCARCITY_MONITOR_MINUTES * 60, max_retries=3)
def scarcity_sensitivity_task() -> int:
    """Learn visitors' scarcity sensitivity from scored sessions; each session once. Returns sessions scored."""
    return scarcity_sensitivity_learn()
