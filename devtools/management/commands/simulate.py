"""``manage.py simulate``: drive the real HTTP API with synthetic visitors.

The visitors, their request bodies and the ground truth come from
:mod:`devtools.simulation`; :mod:`devtools.simulation_driver` sends them, checks every
answer and counts what the server said. Any answer other than the documented 2xx, or any event
the server rejects, stops the run with a non-zero exit.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from django.core.management.base import BaseCommand, CommandError

from devtools.simulation import (
    default_anchor,
    plan_visitors,
    with_offer_sku,
)
from devtools.simulation_driver import ApiError, Report, SessionOutcome, simulate


class Command(BaseCommand):
    help = "Drive the HTTP API with synthetic visitors whose true conversion probability is known."

    def add_arguments(self, parser):
        parser.add_argument("--site-key", required=True, help="the site's public key (X-Site-Key)")
        parser.add_argument("--visitors", type=int, default=200)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=8, help="visitors driven at once")
        parser.add_argument("--truth-file", type=Path, help="write the ground truth per session as JSON lines")
        parser.add_argument(
            "--variant-rate",
            action="append",
            default=[],
            metavar="VARIANT=RATE",
            help="experiment mode: sessions shown VARIANT buy with true rate RATE (repeat per variant)",
        )
        parser.add_argument(
            "--aa",
            type=float,
            metavar="RATE",
            help="A/A mode: every variant named by --variant-rate buys at this same RATE",
        )
        parser.add_argument(
            "--offer-sku",
            help="every add-to-cart touchpoint and purchase names this product SKU (drives an offer's scarcity cues)",
        )
        parser.add_argument(
            "--anchor",
            help="client time of the run (ISO 8601, UTC); events are timestamped up to about 3 hours after it. "
            "Default: 3 hours before the current UTC hour, so a rerun within the hour sends identical events.",
        )

    def handle(self, *args, site_key, visitors, seed, base_url, concurrency, truth_file, anchor, **options):
        if visitors < 1 or concurrency < 1:
            raise CommandError("--visitors and --concurrency must be at least 1.")
        variant_rates = _parse_variant_rates(options["variant_rate"], options["aa"])
        # httpx logs every request at INFO; thousands of lines would bury the summary.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        anchor_at = _parse_anchor(anchor) if anchor else default_anchor(datetime.now(UTC))
        plans = plan_visitors(seed=seed, visitors=visitors, anchor=anchor_at)
        if options.get("offer_sku"):
            plans = with_offer_sku(plans, options["offer_sku"])
        sessions = [session for visitor in plans for session in visitor.sessions]
        self.stdout.write(
            f"Simulating {visitors} visitors ({len(sessions)} sessions, seed {seed}) against {base_url} ..."
        )
        began = time.monotonic()
        try:
            outcomes = simulate(
                base_url=base_url,
                site_key=site_key,
                visitors=plans,
                concurrency=concurrency,
                variant_rates=variant_rates,
            )
        except ApiError as error:
            raise CommandError(f"The API answered an error: {error}") from error
        except httpx.HTTPError as error:
            raise CommandError(f"Could not reach the API at {base_url}: {error!r}") from error
        report = Report(
            visitors=visitors,
            seed=seed,
            anchor=anchor_at,
            outcomes=outcomes,
            plans=sessions,
            seconds=time.monotonic() - began,
        )
        if truth_file is not None:
            truth_file = Path(truth_file)
            truth_file.parent.mkdir(parents=True, exist_ok=True)
            with truth_file.open("w") as out:
                for plan, outcome in zip(sessions, outcomes, strict=True):
                    out.write(json.dumps({**plan.truth.as_dict(), "journey_path": outcome.journey_path}) + "\n")
        for line in report.summary_lines() + _variant_lines(outcomes, variant_rates):
            self.stdout.write(line)
        if truth_file is not None:
            self.stdout.write(f"ground truth: {truth_file}")
        conflicts = sum(outcome.conflicts for outcome in outcomes)
        if conflicts:
            self.stderr.write(
                f"{conflicts} events reused an event id with other content (another --anchor than the first run?); "
                "the first write stands."
            )


def _parse_variant_rates(pairs: list[str], aa_rate: float | None) -> dict[str, float]:
    rates: dict[str, float] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if aa_rate is not None and not value:
            value = str(aa_rate)
        try:
            rate = float(value)
        except ValueError as error:
            raise CommandError(f"--variant-rate: expected VARIANT=RATE, got {pair!r}") from error
        if not key or not 0 <= rate <= 1:
            raise CommandError(f"--variant-rate: expected VARIANT=RATE with RATE in [0, 1], got {pair!r}")
        rates[key] = aa_rate if aa_rate is not None else rate
    if aa_rate is not None and len(rates) < 2:
        raise CommandError("--aa needs at least two variants named with --variant-rate")
    return rates


def _variant_lines(outcomes: list[SessionOutcome], rates: dict[str, float]) -> list[str]:
    """Per variant: sessions shown it, purchases, observed rate next to the true rate."""
    lines = []
    for key, rate in rates.items():
        shown = [o for o in outcomes if o.variant == key]
        bought = sum(o.variant_purchased for o in shown)
        observed = bought / len(shown) if shown else 0.0
        lines.append(
            f"variant {key}: {len(shown)} sessions, {bought} purchases, observed {observed:.3f}, true {rate:.3f}"
        )
    return lines


def _parse_anchor(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise CommandError(f"--anchor: not an ISO 8601 time: {value!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
