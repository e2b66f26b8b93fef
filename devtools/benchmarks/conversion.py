"""``manage.py bench --only conversion_model``: the model against the simulator's truth.

The simulator (:mod:`devtools.simulation`) drives the real HTTP API, served by a
gunicorn subprocess, with visitors whose true purchase probability is known. The
bench then closes the site's sessions (as the idle closer would), trains the site's
model with the service the worker runs, and compares on the held-out sessions:

- at session start (one row per session): the model's AUC and Brier score, raw and
  as served (clamped to [0.1, 0.9]), next to those of the true probability ``p``
  (the ceiling: no model of these features can rank better than the truth) and of
  the documented priors;
- over every scoring moment (start and stage updates; the figures stored on the
  model): the model next to the true probability given the stage reached, by Bayes
  from the simulator's documented funnel: a non-purchaser goes on from awareness with
  ``a = min(0.95, 0.30 + 0.6 e)`` and from consideration with
  ``b = min(0.95, 0.20 + 0.6 e)``, a purchaser always reaches decision, so
  ``P(buy | consideration) = p / (p + (1 - p) a)`` and
  ``P(buy | decision) = p / (p + (1 - p) a b)``.

No budget: PRODUCT.md section 9 sets none for the model; the figures are reported.
Knobs: ``--set visitors=10000 seed=7 concurrency=8 workers=2 threads=4``.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

from django.db.models import F
from django.utils import timezone

from analytics.conversion_training import (
    Row,
    conversion_model_train,
    served_probability,
    training_data,
)
from analytics.models import ConversionModel
from core import conversion_model
from devtools.benchmarks.base import (
    Benchmark,
    BenchOptions,
    BenchResult,
    Series,
    Server,
    ServerSpec,
    bench_site_delete,
)
from devtools.simulation import SessionTruth, default_anchor, plan_visitors
from devtools.simulation_driver import simulate
from journeys.models import JourneySession
from journeys.services.sites import site_create


def true_probability_at(row: Row, truth: SessionTruth) -> float:
    """The true purchase probability given what the row's moment reveals (module docstring)."""
    p, e = truth.true_probability, truth.engagement
    stage = row.features["stage"]
    if stage == "awareness":
        return p
    on_from_awareness = min(0.95, 0.30 + 0.6 * e)
    if stage == "consideration":
        return p / (p + (1 - p) * on_from_awareness)
    return p / (p + (1 - p) * on_from_awareness * min(0.95, 0.20 + 0.6 * e))


def conversion_model_benchmark(options: BenchOptions) -> BenchResult:
    visitors = options.param("visitors", 1500 if options.quick else 10000, int)
    seed = options.param("seed", 7, int)
    concurrency = options.param("concurrency", 8, int)
    spec = ServerSpec("gunicorn", options.param("workers", 2, int), options.param("threads", 4, int))
    logging.getLogger("httpx").setLevel(logging.WARNING)

    token = uuid.uuid4().hex[:10]
    site = site_create(name=f"bench conversion {token}", domain=f"bench-conversion-{token}.invalid")
    try:
        plans = plan_visitors(seed=seed, visitors=visitors, anchor=default_anchor(datetime.now(UTC)))
        truths = {session.session_id: session.truth for visitor in plans for session in visitor.sessions}
        options.log(f"  simulating {visitors} visitors ({len(truths)} sessions, seed {seed}) through {spec.label}")
        began = time.monotonic()
        with Server(spec) as server:
            simulate(
                base_url=f"http://127.0.0.1:{server.port}",
                site_key=site.public_key,
                visitors=plans,
                concurrency=concurrency,
            )
        simulated = time.monotonic() - began
        JourneySession.objects.filter(site=site, ended_at__isnull=True).update(ended_at=F("last_activity_at"))

        began = time.monotonic()
        outcome = conversion_model_train(site_id=site.pk)
        trained = time.monotonic() - began
        if outcome.status == "skipped":
            raise RuntimeError(f"the model was not trained: {outcome.reason}")
        model = ConversionModel.objects.get(site=site, version=outcome.version)
        held_out = [row for row in training_data(site_id=site.pk, now=timezone.now()).rows if row.holdout]
        start = [row for row in held_out if row.start]

        def figures(rows: list[Row], predict) -> conversion_model.Metrics:
            return conversion_model.metrics([row.label for row in rows], [predict(row) for row in rows])

        coefficients = model.coefficients
        table = {
            "start: model, raw score": figures(start, lambda r: conversion_model.score(coefficients, r.features)),
            "start: model, served [0.1, 0.9]": figures(start, lambda r: served_probability(coefficients, r)),
            "start: true probability (ceiling)": figures(start, lambda r: truths[r.session_id].true_probability),
            "start: priors, served": figures(start, lambda r: served_probability(None, r)),
            "all moments: model, served (stored)": figures(held_out, lambda r: served_probability(coefficients, r)),
            "all moments: true probability given stage": figures(
                held_out, lambda r: true_probability_at(r, truths[r.session_id])
            ),
            "all moments: priors, served": figures(held_out, lambda r: served_probability(None, r)),
        }
    finally:
        bench_site_delete(site)

    series = []
    for label, measured in table.items():
        series.append(Series(f"{label}: AUC", "", [round(measured.auc, 4)]))
        series.append(Series(f"{label}: Brier", "", [round(measured.brier, 4)]))
    series += [
        Series("simulation through the API", "s", [round(simulated, 1)]),
        Series("training (conversion_model_train)", "s", [round(trained, 2)]),
    ]
    ceiling = table["start: true probability (ceiling)"]
    raw = table["start: model, raw score"]
    return BenchResult(
        name="conversion_model",
        series=series,
        setup={
            "summary": (
                f"{visitors} simulated visitors ({len(truths)} sessions, seed {seed}); model v{model.version} "
                f"{outcome.status}; {model.training_size} training / {model.holdout_size} held-out sessions"
            ),
            "visitors": visitors,
            "sessions": len(truths),
            "seed": seed,
            "server": spec.label,
            "concurrency": concurrency,
            "model_version": model.version,
            "status": outcome.status,
            "training_size": model.training_size,
            "holdout_size": model.holdout_size,
            "holdout_rows": len(held_out),
            "holdout_start_rows": len(start),
            "holdout_conversions": sum(row.label for row in start),
            "stored_auc": model.auc,
            "stored_brier": model.brier,
            "baseline_auc": model.baseline_auc,
            "baseline_brier": model.baseline_brier,
        },
        notes=[
            f"at session start the model reaches AUC {raw.auc:.4f} of the truth's {ceiling.auc:.4f} "
            f"({raw.auc / ceiling.auc:.1%}); Brier {raw.brier:.4f} vs {ceiling.brier:.4f}",
            "all sessions of a run start within minutes, so hour and weekday carry no signal here",
        ],
    )


BENCHMARK = Benchmark(
    "conversion_model",
    "the conversion model trained on simulated visitors vs their true probabilities",
    conversion_model_benchmark,
)
