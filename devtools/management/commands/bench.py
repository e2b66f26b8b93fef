"""``python manage.py bench``: measure the budgets of PRODUCT.md section 9."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from devtools.benchmarks import BENCHMARKS
from devtools.benchmarks.base import BenchOptions, render, run_benchmarks


class Command(BaseCommand):
    help = (
        "Run the benchmarks of PRODUCT.md section 9 against a real server and database, print a table and "
        "write bench-results/bench.json. Exits with an error when a budget is missed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--only",
            action="append",
            choices=sorted(BENCHMARKS),
            metavar="NAME",
            help=f"run only this benchmark (repeatable); known: {', '.join(BENCHMARKS)}",
        )
        parser.add_argument("--quick", action="store_true", help="smaller loads, for a fast look")
        parser.add_argument("--repeats", type=int, default=3, help="runs per phase; medians are reported")
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a benchmark knob, e.g. server=gunicorn|uvicorn|auto, workers=2, events=200000, connections=4",
        )
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "bench-results" / "bench.json"))

    def handle(self, *args, only, quick, repeats, set, output, **options):
        params = {}
        for item in set:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--set wants KEY=VALUE, got {item!r}")
            params[key.strip()] = value.strip()
        if repeats < 1:
            raise CommandError("--repeats must be at least 1")

        self.ensure_migrated()

        def log(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        document = run_benchmarks(
            BENCHMARKS, only or list(BENCHMARKS), BenchOptions(quick=quick, repeats=repeats, log=log, params=params)
        )
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Keep the results of benchmarks not run this time (``--only``), replace the others.
        previous = json.loads(path.read_text()) if path.exists() else {}
        benchmarks = {**previous.get("benchmarks", {}), **document["benchmarks"]}
        path.write_text(json.dumps({**document, "benchmarks": benchmarks}, indent=2) + "\n")

        self.stdout.write("")
        self.stdout.write(render(document))
        self.stdout.write(f"\nwritten to {path}")
        missed = [
            check["what"]
            for result in document["benchmarks"].values()
            for check in result["checks"]
            if not check["passed"]
        ]
        if missed:
            raise CommandError(f"{len(missed)} budget(s) missed: {'; '.join(missed)}")

    def ensure_migrated(self) -> None:
        """Migrate the embedded database (it is the bench's own); refuse on any other one."""
        from config import embedded

        executor = MigrationExecutor(connection)
        if not executor.migration_plan(executor.loader.graph.leaf_nodes()):
            return
        if "postgres" not in embedded._handles:
            raise CommandError("The database has unapplied migrations; run `python manage.py migrate` first.")
        self.stdout.write("Migrating the embedded database first.")
        call_command("migrate", verbosity=0)
