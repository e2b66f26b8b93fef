"""The contract every Celery task of this project follows."""

from celery import shared_task
from django.db import OperationalError


def periodic_task(*, expires: int, max_retries: int = 5):
    """A task that is safe to run twice: acknowledged after it ran, requeued when its
    worker dies, retried with backoff on database errors, and dropped when it waited
    longer than ``expires`` seconds (the next beat sends a fresh one)."""
    return shared_task(
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=(OperationalError,),
        retry_backoff=True,
        max_retries=max_retries,
        expires=expires,
    )
