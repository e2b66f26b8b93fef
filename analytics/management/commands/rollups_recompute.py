"""``python manage.py rollups_recompute [--site ID] [--date-from D] [--date-to D]``."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from analytics.rollups import rollups_recompute


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"'{value}' is not a date (YYYY-MM-DD)") from error


class Command(BaseCommand):
    help = "Rebuild the analytics rollups from raw rows (all keys, or a site and/or a day range of session starts)."

    def add_arguments(self, parser):
        parser.add_argument("--site", type=int, help="site id")
        parser.add_argument("--date-from", type=_date, help="first session start day (UTC), inclusive")
        parser.add_argument("--date-to", type=_date, help="last session start day (UTC), inclusive")

    def handle(self, *args, site, date_from, date_to, **options):
        if date_from and date_to and date_from > date_to:
            raise CommandError("--date-from is after --date-to")
        result = rollups_recompute(site_id=site, date_from=date_from, date_to=date_to)
        self.stdout.write(f"recomputed {result.keys} (site, day) keys in {result.seconds:.2f} s")
