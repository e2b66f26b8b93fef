from django.conf import settings

from core.tasks import periodic_task
from journeys.services.sessions import sessions_close_idle


@periodic_task(expires=60)
def close_idle_sessions_task() -> int:
    """Close idle sessions for at most SESSION_CLOSE_BUDGET_SECONDS; the next beat goes on. Returns sessions closed."""
    return sessions_close_idle(
        idle_minutes=settings.SESSION_IDLE_MINUTES,
        batch_size=settings.SESSION_CLOSE_BATCH_SIZE,
        budget_seconds=settings.SESSION_CLOSE_BUDGET_SECONDS,
    )
