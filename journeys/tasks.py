from django.conf import settings

from core.tasks import periodic_task
from journeys.services.sessions import sessions_close_idle


@periodic_task(expires=300)
def close_idle_sessions_task() -> int:
    return sessions_close_idle(idle_minutes=settings.SESSION_IDLE_MINUTES)
