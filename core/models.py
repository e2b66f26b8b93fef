"""What the platform itself keeps: the state of each periodic task (:mod:`core.tasks`)."""

from django.db import models


class PeriodicTaskState(models.Model):
    """One row per periodic task (and arguments): how its runs went, written by
    :func:`core.tasks.periodic_task` after each run and each skipped copy.

    ``last_lateness_seconds`` is how long the last run's message waited between being
    sent (by beat, or a caller) and starting; ``skipped`` counts copies that found another
    run of the same task holding its lock and returned at once.
    """

    key = models.CharField(max_length=255, primary_key=True, help_text="Task name, then its arguments if any.")
    runs = models.BigIntegerField(default=0, help_text="Runs that finished, successfully or not.")
    failures = models.BigIntegerField(default=0, help_text="Runs that ended with an exception.")
    skipped = models.BigIntegerField(default=0, help_text="Copies that found the lock taken and returned at once.")
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_duration_seconds = models.FloatField(null=True, blank=True, help_text="Seconds the last run took.")
    last_lateness_seconds = models.FloatField(
        null=True, blank=True, help_text="Seconds the last run's message waited from being sent to starting."
    )
    last_skipped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key
