"""``python manage.py bulk_generate --sessions N --touchpoints-per-session M --days D --seed S``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics.rollups import rollups_update
from devtools.bulk_data import bulk_generate


class Command(BaseCommand):
    help = (
        "Generate synthetic traffic for a new site inside PostgreSQL (sessions, touchpoints, transitions, "
        "conversions, exposures, personalization records, holdouts, claims), then run the rollups."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sessions", type=int, required=True)
        parser.add_argument("--touchpoints-per-session", type=int, default=10)
        parser.add_argument("--days", type=int, default=30, help="sessions start over this many days ending today")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--no-rollups", action="store_true", help="leave the rollup run to the worker")

    def handle(self, *args, sessions, touchpoints_per_session, days, seed, no_rollups, **options):
        if sessions < 1 or days < 1 or touchpoints_per_session < 0:
            raise CommandError("--sessions and --days must be positive, --touchpoints-per-session not negative")
        result = bulk_generate(
            sessions=sessions,
            touchpoints_per_session=touchpoints_per_session,
            days=days,
            seed=seed,
            last_day=timezone.now().date(),
            log=self.stdout.write,
        )
        self.stdout.write(f"site {result.site_id}: {sum(result.counts.values()):,} rows")
        if not no_rollups:
            rollup = rollups_update()
            self.stdout.write(f"rollups: {rollup.keys} (site, day) keys in {rollup.seconds:.1f} s")
