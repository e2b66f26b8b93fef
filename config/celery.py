"""The Celery app. Its tasks follow one contract: :func:`core.tasks.periodic_task`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("journey_engine")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
