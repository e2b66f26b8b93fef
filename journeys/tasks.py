from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from journeys.services.sessions import sessions_close_idle


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    expires=300,
)
def close_idle_sessions_task() -> int:
    return sessions_close_idle(idle_minutes=settings.SESSION_IDLE_MINUTES)
