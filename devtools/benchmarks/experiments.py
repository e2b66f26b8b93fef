"""Checks of the experiment machinery on simulated traffic with known truth (PRODUCT.md section 9).

Plain functions, run by the benchmark command (``python manage.py bench --only
aa_false_positives --only bandit_regret --only optimizer_pass``), never as timed tests:

- :func:`aa_false_positive_rate`: A/A experiments (no true difference), binomial draws
  with numpy. The share declared significant at alpha by the fixed-horizon
  two-proportion test should be about alpha; the always-valid (sequential) p-value
  is conservative, and stays under alpha even when read after every batch ("peeking"),
  where the fixed-horizon test's rate inflates.
- :func:`optimizer_winner_rate`: experiments run through the optimizer's real decision
  code (:func:`personalization.services.optimizer._optimize_one` on each experiment's
  counts, every window of ``OPTIMIZER_CADENCE_MINUTES`` for 14 simulated days); traffic
  is drawn with numpy for all experiments and windows at once. With no true difference
  (A/A) the share with a winner proposal is the winner rule's false-positive rate; with
  a +20% lift and traffic that reaches the recommended sample size
  (:func:`core.statistics.sample_size_per_arm`) by the end, it is the rule's power.
- :func:`bandit_regret`: a known winner; the same traffic under a fixed 50/50 split and
  under the optimizer's bandit rule (:func:`personalization.services.optimizer.bandit_weights`
  on counts weighted by allocation period, the same minimum exposures, floor, minimum
  move and guardrail, one reweight per batch = per optimizer window).
- :func:`optimizer_pass_fixture` / :func:`optimizer_pass_run`: a site with many live
  experiments and their exposures and conversions, for timing one optimizer pass.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import statistics
from core.statistics import Arm
from devtools.benchmarks.base import Benchmark, BenchOptions, BenchResult, Check, Series

# --- A/A ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AAResult:
    tests: int
    visitors: int
    rate: float
    alpha: float
    looks: int
    fixed_horizon_rate: float  # two-proportion p-value < alpha, read once at the end
    sequential_rate: float  # always-valid p-value < alpha, read once at the end
    peeking_fixed_rate: float  # fixed-horizon p-value < alpha at any of the looks
    peeking_sequential_rate: float  # always-valid p-value < alpha at any of the looks


def aa_false_positive_rate(
    n_tests: int = 200,
    visitors: int = 10_000,
    rate: float = 0.1,
    seed: int = 20261121,
    alpha: float = 0.05,
    looks: int = 100,
) -> AAResult:
    """Simulate ``n_tests`` A/A experiments; the share of each test rule that calls them significant.

    Each experiment's ``visitors`` arrive in ``looks`` equal batches (every 100 visitors
    by default), each visitor in arm A or B with probability 1/2 (as the hash split
    does), converting with ``rate`` in both arms. Both tests are the ones the results
    report (:func:`core.statistics.compare`): the fixed-horizon Welch t on the relative
    lift and the always-valid p-value, which is 1 until the documented minimum sample.
    """
    rng = np.random.default_rng(seed)
    per_look = visitors // looks
    fixed = sequential = peek_fixed = peek_sequential = 0
    for _ in range(n_tests):
        n = np.zeros(2, dtype=np.int64)
        x = np.zeros(2, dtype=np.int64)
        seen_fixed = seen_sequential = False
        for _look in range(looks):
            in_b = rng.binomial(per_look, 0.5)
            shown = np.array([per_look - in_b, in_b])
            n += shown
            x += rng.binomial(shown, rate)
            control, treatment = Arm(int(n[0]), int(x[0])), Arm(int(n[1]), int(x[1]))
            result = statistics.compare(control, treatment, alpha=alpha)
            p_fixed, p_sequential = result.p_value, result.sequential_p_value
            seen_fixed |= p_fixed < alpha
            seen_sequential |= p_sequential < alpha
        fixed += p_fixed < alpha
        sequential += p_sequential < alpha
        peek_fixed += seen_fixed
        peek_sequential += seen_sequential
    return AAResult(
        tests=n_tests,
        visitors=visitors,
        rate=rate,
        alpha=alpha,
        looks=looks,
        fixed_horizon_rate=fixed / n_tests,
        sequential_rate=sequential / n_tests,
        peeking_fixed_rate=peek_fixed / n_tests,
        peeking_sequential_rate=peek_sequential / n_tests,
    )


# --- bandit vs fixed split ------------------------------------------------------------


@dataclass(frozen=True)
class RegretResult:
    rates: tuple[float, ...]
    visitors: int
    batch: int
    floor: float
    guardrail: float
    seeds: int
    fixed_regret: float  # mean over seeds
    bandit_regret: float  # mean over seeds
    ratio: float  # bandit / fixed
    bandit_best_share: float  # mean share of visitors the bandit showed the best arm
    large_moves: float  # mean reweights per run that needed an approver
    approve_large: bool


def _run_fixed(rng: np.random.Generator, rates: np.ndarray, visitors: int, batch: int) -> float:
    weights = np.full(len(rates), 1 / len(rates))
    regret = 0.0
    for _ in range(visitors // batch):
        shown = rng.multinomial(batch, weights)
        regret += float(shown @ (rates.max() - rates))
    return regret


def _run_bandit(
    rng: np.random.Generator,
    rates: np.ndarray,
    visitors: int,
    batch: int,
    floor: float,
    guardrail: float,
    approve_large: bool,
) -> tuple[float, float, int]:
    from personalization.services.optimizer import REWEIGHT_MIN_MOVE, bandit_weights, largest_move

    k = len(rates)
    weights = [1 / k] * k
    # Counts per allocation period (a new one after every applied reweight), weighted as
    # the optimizer weighs a bandit's (core.statistics.period_weighted).
    periods = [[np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)]]
    regret = 0.0
    best_shown = 0
    large = 0
    for _ in range(visitors // batch):
        shown = rng.multinomial(batch, weights)
        n, x = periods[-1]
        n += shown
        x += rng.binomial(shown, rates)
        regret += float(shown @ (rates.max() - rates))
        best_shown += int(shown[int(rates.argmax())])
        # The optimizer window after this batch.
        arms = statistics.period_weighted(
            [[Arm(int(a), int(b)) for a, b in zip(pn, px, strict=True)] for pn, px in periods]
        )
        target = bandit_weights(arms, floor)
        if target is None:
            continue
        move = largest_move(weights, target)
        if move < REWEIGHT_MIN_MOVE:
            continue
        # A move above the guardrail waits for an approver: accepted before the next
        # window with ``approve_large``, else never (the bandit waits for small moves).
        if move > guardrail:
            large += 1
            if not approve_large:
                continue
        weights = target
        periods.append([np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)])
    return regret, best_shown / (visitors // batch * batch), large


def bandit_regret(
    rates: Sequence[float] = (0.10, 0.12),
    visitors: int = 20_000,
    batch: int = 500,
    floor: float = 0.05,
    guardrail: float = 0.2,
    seeds: Sequence[int] = tuple(range(20)),
    approve_large: bool = True,
) -> RegretResult:
    """Regret of a fixed equal split and of the optimizer's bandit on the same traffic.

    Regret is the expected conversions lost: the sum over visitors of (best rate - rate
    of the arm shown). Every ``batch`` visitors is one optimizer window. Averaged over
    ``seeds``; each seed drives both policies. Reweights above the guardrail need an
    approver: ``approve_large`` says whether one accepts them before the next window.
    """
    true_rates = np.asarray(rates, dtype=float)
    fixed, bandit, best, large = [], [], [], []
    for seed in seeds:
        fixed.append(_run_fixed(np.random.default_rng([seed, 1]), true_rates, visitors, batch))
        regret, share, moves = _run_bandit(
            np.random.default_rng([seed, 2]), true_rates, visitors, batch, floor, guardrail, approve_large
        )
        bandit.append(regret)
        best.append(share)
        large.append(moves)
    return RegretResult(
        rates=tuple(rates),
        visitors=visitors,
        batch=batch,
        floor=floor,
        guardrail=guardrail,
        seeds=len(seeds),
        fixed_regret=float(np.mean(fixed)),
        bandit_regret=float(np.mean(bandit)),
        ratio=float(np.mean(bandit) / np.mean(fixed)),
        bandit_best_share=float(np.mean(best)),
        large_moves=float(np.mean(large)),
        approve_large=approve_large,
    )


# --- the winner rule through the optimizer's decision code ------------------------------


@dataclass(frozen=True)
class WinnerRuleResult:
    experiments: int
    days: int
    cadence_minutes: int
    windows: int
    daily_visitors: float
    base_rates: tuple[float, float]
    lift: float
    minimum_sample: int
    winners: int  # experiments with a declare_winner proposal for the treatment
    rate: float  # winners / experiments
    median_days_to_winner: float | None
    final_exposures_per_arm: float  # mean over experiments, at the end (or at the winner)
    decisions: int  # calls of the decision code (windows whose counts changed)
    other_proposals: dict


def optimizer_winner_rate(
    *,
    experiments: int = 200,
    days: int = 14,
    daily_visitors: float = 1000,
    base_rates: tuple[float, float] = (0.05, 0.10),
    lift: float = 0.0,
    seed: int = 20261205,
    cadence_minutes: int | None = None,
    log=None,
) -> WinnerRuleResult:
    """Two-arm fixed 50/50 experiments decided by the real optimizer code at every window.

    Each experiment has a control rate drawn from ``base_rates`` and a treatment rate
    ``(1 + lift)`` times it; ``daily_visitors`` arrive per day (Poisson per window), each
    in either arm with probability 1/2 (the hash split). At every window each running
    experiment's cumulative counts go through
    :func:`personalization.services.optimizer._optimize_one` (SRM, winner, pause and stop
    rules; the experiment model's default minimum sample) with the proposals it made
    before (pending: nobody decides them here), exactly as a pass would read them. An
    experiment stops at its first ``declare_winner`` proposal. A window whose counts did
    not change since a decision that proposed nothing is skipped: the same inputs give
    the same (empty) answer. The guardrail hook is unregistered during the run (no
    database behind these experiments; a guardrail could only block more winners).
    """
    from core import hooks
    from personalization.models import Allocation, Experiment, ProposalKind, Status
    from personalization.services import optimizer

    cadence = cadence_minutes or settings.OPTIMIZER_CADENCE_MINUTES
    windows = days * 24 * 60 // cadence
    rng = np.random.default_rng(seed)
    control_rates = rng.uniform(*base_rates, experiments)
    per_window = rng.poisson(daily_visitors * cadence / 1440, (experiments, windows))
    in_b = rng.binomial(per_window, 0.5)
    in_a = per_window - in_b
    conv_a = rng.binomial(in_a, control_rates[:, None])
    conv_b = rng.binomial(in_b, np.minimum(control_rates * (1 + lift), 1)[:, None])
    n_a, n_b, x_a, x_b = (np.cumsum(array, axis=1) for array in (in_a, in_b, conv_a, conv_b))
    minimum = Experiment._meta.get_field("minimum_sample").default
    rows = [
        Experiment(
            pk=index + 1,
            key=f"sim-{index}",
            allocation=Allocation.FIXED,
            minimum_sample=minimum,
            status=Status.LIVE,
        )
        for index in range(experiments)
    ]
    existing: list[list] = [[] for _ in range(experiments)]
    last: list[tuple | None] = [None] * experiments
    winner_window: dict[int, int] = {}
    other: Counter = Counter()
    decisions = 0
    start = datetime(2026, 1, 5, tzinfo=UTC)
    previous_check = hooks._guardrail_check
    hooks.register_guardrail_check(None)
    try:
        for w in range(windows):
            now = start + timedelta(minutes=cadence * w)
            work = optimizer._Pass(now=now, window=optimizer.optimizer_window(now, cadence), actor=None)
            made_by: list[int] = []
            for e in range(experiments):
                if e in winner_window:
                    continue
                key = (int(n_a[e, w]), int(x_a[e, w]), int(n_b[e, w]), int(x_b[e, w]))
                if key == last[e]:
                    continue
                last[e] = key
                counts = optimizer.ExperimentCounts(
                    rows[e],
                    [
                        optimizer.ArmCounts(2 * e + 1, 2 * e + 1, "a", True, False, 0.5, key[0], key[1], key[0]),
                        optimizer.ArmCounts(2 * e + 2, 2 * e + 2, "b", False, False, 0.5, key[2], key[3], key[2]),
                    ],
                )
                before = len(work.proposals)
                optimizer._optimize_one(optimizer.ExperimentStats(counts), existing[e], work)
                decisions += 1
                made_by += [e] * (len(work.proposals) - before)
            for e, proposal in zip(made_by, work.proposals, strict=True):
                existing[e].append(proposal)
                last[e] = None  # a new proposal changes what the next window blocks
                if proposal.kind == ProposalKind.DECLARE_WINNER:
                    winner_window[e] = w
                else:
                    reason = proposal.proposed.get("reason")
                    other[f"{proposal.kind}: {reason}" if reason else str(proposal.kind)] += 1
            if log and w and w % (windows // 7) == 0:
                log(f"   day {w * cadence // 1440}: {len(winner_window)} winners of {experiments}")
    finally:
        hooks.register_guardrail_check(previous_check)
    ends = [winner_window.get(e, windows - 1) for e in range(experiments)]
    final = [min(n_a[e, ends[e]], n_b[e, ends[e]]) for e in range(experiments)]
    days_to = [(w + 1) * cadence / 1440 for w in winner_window.values()]
    return WinnerRuleResult(
        experiments=experiments,
        days=days,
        cadence_minutes=cadence,
        windows=windows,
        daily_visitors=daily_visitors,
        base_rates=tuple(base_rates),
        lift=lift,
        minimum_sample=minimum,
        winners=len(winner_window),
        rate=len(winner_window) / experiments,
        median_days_to_winner=float(np.median(days_to)) if days_to else None,
        final_exposures_per_arm=float(np.mean(final)),
        decisions=decisions,
        other_proposals=dict(other),
    )


# --- optimizer pass fixture -----------------------------------------------------------


@dataclass
class OptimizerFixture:
    site: object
    experiments: int
    variants: int
    exposures: int
    conversions: int


_EXPOSURES_SQL = """
INSERT INTO personalization_exposure (session_id, variant_id, experiment_id, variant_version, exposed_at)
SELECT CASE WHEN g <= t.c THEN (%(converting)s::bigint[])[(t.off + g) %% %(n_converting)s + 1]
            ELSE (%(other)s::bigint[])[(t.off + g) %% %(n_other)s + 1] END,
       t.variant_id, t.experiment_id, 1, %(exposed_at)s
FROM unnest(%(variant_ids)s::bigint[], %(experiment_ids)s::bigint[], %(n)s::int[], %(c)s::int[], %(off)s::int[])
     AS t(variant_id, experiment_id, n, c, off),
     generate_series(1, t.n) AS g
"""


def optimizer_pass_fixture(
    *, experiments: int = 1000, variants: int = 5, visitors_per_experiment: int = 1000, seed: int = 7
) -> OptimizerFixture:
    """A new site with ``experiments`` live experiments of ``variants`` arms, half of them bandits.

    Each experiment had ``visitors_per_experiment`` sessions split over its arms by
    their weights (so SRM passes), a base conversion rate of 5-15% and a lift per
    treatment of -20%..+30%; a third have a minimum sample the data reaches, so the
    winner and pause rules run too. Sessions come from two pools (converting, not) and
    are shared between experiments, as one session sees many slots.
    """
    from journeys.models import ConversionEvent, JourneySession, Visitor
    from journeys.services.sites import site_create
    from personalization.models import Allocation, ContentVariant, Experiment, ExperimentArm, Exposure, Slot, Status

    rng = np.random.default_rng(seed)
    now = timezone.now()
    tag = uuid.uuid4().hex[:8]
    site = site_create(name=f"bench optimizer {tag}", domain=f"bench-optimizer-{tag}.example")
    pool = visitors_per_experiment  # each pool is large enough for any arm's sessions
    with transaction.atomic():
        visitor = Visitor.objects.create(site=site, visitor_id=f"bench-{tag}")
        sessions = JourneySession.objects.bulk_create(
            JourneySession(
                site=site,
                visitor=visitor,
                session_id=f"bench-{tag}-{i}",
                device_type="mobile",
                started_at=now - timedelta(hours=3),
                last_activity_at=now - timedelta(hours=3),
                journey_path="standard_conversion_funnel",
                conversion_probability=0.1,
                request_hash="bench",
            )
            for i in range(2 * pool)
        )
        converting, other = [s.pk for s in sessions[:pool]], [s.pk for s in sessions[pool:]]
        ConversionEvent.objects.bulk_create(
            ConversionEvent(
                site=site,
                session_id=pk,
                event_id=uuid.uuid4(),
                type="purchase",
                payload_hash="bench",
                converted_at=now - timedelta(hours=1),
            )
            for pk in converting
        )
        slots = Slot.objects.bulk_create(Slot(site=site, key=f"s{e}", name=f"s{e}") for e in range(experiments))
        content = ContentVariant.objects.bulk_create(
            ContentVariant(
                site=site,
                slot=slots[e],
                key=f"e{e}-v{v}",
                name=f"e{e}-v{v}",
                status=Status.LIVE,
                published={"payload": {}},
                published_version=1,
            )
            for e in range(experiments)
            for v in range(variants)
        )
        rows = Experiment.objects.bulk_create(
            Experiment(
                site=site,
                key=f"e{e}",
                name=f"e{e}",
                slot=slots[e],
                allocation=Allocation.BANDIT if e % 2 else Allocation.FIXED,
                minimum_sample=150 if e % 3 == 0 else 5000,
                status=Status.LIVE,
                published={"bench": True},
                published_version=1,
                started_at=now - timedelta(days=1),
            )
            for e in range(experiments)
        )
        ExperimentArm.objects.bulk_create(
            ExperimentArm(experiment=rows[e], variant=content[e * variants + v], is_control=v == 0, weight=1 / variants)
            for e in range(experiments)
            for v in range(variants)
        )
        arms = {"variant_ids": [], "experiment_ids": [], "n": [], "c": [], "off": []}
        for e, experiment in enumerate(rows):
            base = rng.uniform(0.05, 0.15)
            lifts = np.concatenate([[0.0], rng.uniform(-0.2, 0.3, variants - 1)])
            shown = rng.multinomial(visitors_per_experiment, [1 / variants] * variants)
            for v in range(variants):
                arms["variant_ids"].append(content[e * variants + v].pk)
                arms["experiment_ids"].append(experiment.pk)
                arms["n"].append(int(shown[v]))
                arms["c"].append(int(rng.binomial(shown[v], base * (1 + lifts[v]))))
                arms["off"].append(int(rng.integers(0, pool)))
        with connection.cursor() as cursor:
            cursor.execute(
                _EXPOSURES_SQL,
                {
                    **arms,
                    "converting": converting,
                    "other": other,
                    "n_converting": pool,
                    "n_other": pool,
                    "exposed_at": now - timedelta(hours=2),
                },
            )
            exposures = cursor.rowcount
    with connection.cursor() as cursor:
        # Fresh planner statistics, as autovacuum keeps them on a live database.
        for model in (Exposure, ConversionEvent, JourneySession, Experiment, ExperimentArm):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return OptimizerFixture(site, experiments, variants, exposures, sum(arms["c"]))


def optimizer_pass_run(fixture: OptimizerFixture, now: datetime) -> tuple[float, list]:
    """One timed optimizer pass over the fixture's site; returns (seconds, new proposals)."""
    import time

    from personalization.services.optimizer import experiments_optimize

    started = time.perf_counter()
    proposals = experiments_optimize(site_id=fixture.site.pk, now=now)
    return time.perf_counter() - started, proposals


def optimizer_fixture_delete(fixture: OptimizerFixture) -> None:
    """Delete the fixture's rows with plain SQL (the ORM's cascade would load a million exposures)."""
    site_id = fixture.site.pk
    statements = [
        "DELETE FROM personalization_exposure WHERE experiment_id IN "
        "(SELECT id FROM personalization_experiment WHERE site_id = %(site)s)",
        "DELETE FROM personalization_approvalrequest WHERE content_type_id = %(proposal_type)s AND object_id IN "
        "(SELECT p.id FROM personalization_optimizationproposal p "
        "JOIN personalization_experiment x ON x.id = p.experiment_id WHERE x.site_id = %(site)s)",
        "DELETE FROM personalization_auditlog WHERE content_type_id = %(proposal_type)s AND object_id IN "
        "(SELECT p.id FROM personalization_optimizationproposal p "
        "JOIN personalization_experiment x ON x.id = p.experiment_id WHERE x.site_id = %(site)s)",
        "DELETE FROM personalization_auditlog WHERE content_type_id = %(experiment_type)s AND object_id IN "
        "(SELECT id FROM personalization_experiment WHERE site_id = %(site)s)",
        "DELETE FROM personalization_optimizationproposal WHERE experiment_id IN "
        "(SELECT id FROM personalization_experiment WHERE site_id = %(site)s)",
        "DELETE FROM personalization_experimentarm WHERE experiment_id IN "
        "(SELECT id FROM personalization_experiment WHERE site_id = %(site)s)",
        "DELETE FROM personalization_experiment WHERE site_id = %(site)s",
        "DELETE FROM personalization_contentvariant WHERE site_id = %(site)s",
        "DELETE FROM personalization_slot WHERE site_id = %(site)s",
        "DELETE FROM journeys_conversionevent WHERE site_id = %(site)s",
        "DELETE FROM journeys_journeysession WHERE site_id = %(site)s",
        "DELETE FROM journeys_visitor WHERE site_id = %(site)s",
        "DELETE FROM journeys_site WHERE id = %(site)s",
    ]
    from django.contrib.contenttypes.models import ContentType

    from personalization.models import Experiment, OptimizationProposal

    params = {
        "site": site_id,
        "proposal_type": ContentType.objects.get_for_model(OptimizationProposal).pk,
        "experiment_type": ContentType.objects.get_for_model(Experiment).pk,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, params)


def optimizer_fixture_reset(fixture: OptimizerFixture) -> None:
    """Back to before any pass: no proposals, their requests and audit rows gone, equal weights."""
    from django.contrib.contenttypes.models import ContentType

    from personalization.models import ApprovalRequest, AuditLog, Experiment, ExperimentArm, OptimizationProposal

    proposals = OptimizationProposal.objects.filter(experiment__site=fixture.site)
    proposal_type = ContentType.objects.get_for_model(OptimizationProposal)
    experiment_type = ContentType.objects.get_for_model(Experiment)
    with transaction.atomic():
        ids = list(proposals.values_list("pk", flat=True))
        ApprovalRequest.objects.filter(content_type=proposal_type, object_id__in=ids).delete()
        AuditLog.objects.filter(content_type=proposal_type, object_id__in=ids).delete()
        AuditLog.objects.filter(
            content_type=experiment_type,
            object_id__in=Experiment.objects.filter(site=fixture.site).values("pk"),
        ).delete()
        proposals.delete()
        ExperimentArm.objects.filter(experiment__site=fixture.site).update(weight=1 / fixture.variants, is_paused=False)


# --- the benchmarks ---------------------------------------------------------------------


def benchmarks() -> list[Benchmark]:
    """The optimizer pass, A/A and bandit benchmarks."""
    from collections import Counter

    from django.test.utils import CaptureQueriesContext

    def optimizer_pass_benchmark(options: BenchOptions) -> BenchResult:
        experiments = options.param("experiments", 200 if options.quick else 1000, int)
        variants = options.param("variants", 5, int)
        visitors = options.param("visitors", 1000, int)
        log = options.log
        started = timezone.now()
        fixture = optimizer_pass_fixture(experiments=experiments, variants=variants, visitors_per_experiment=visitors)
        log(f"   fixture: {fixture.exposures:,} exposures, {fixture.conversions:,} conversions")
        cold, kinds = [], Counter()
        try:
            for run in range(options.repeats):
                optimizer_fixture_reset(fixture)
                seconds, proposals = optimizer_pass_run(fixture, started + timedelta(minutes=5 * run))
                cold.append(seconds)
                kinds = Counter(f"{p.kind} {p.status}" for p in proposals)
                log(f"   run {run + 1}, first window: {seconds:.2f} s, {len(proposals)} proposals")
            steady, _ = optimizer_pass_run(fixture, started + timedelta(minutes=5 * options.repeats))
            log(f"   next window: {steady:.2f} s")
            with CaptureQueriesContext(connection) as queries:
                optimizer_pass_run(fixture, started + timedelta(minutes=5 * (options.repeats + 1)))
        finally:
            optimizer_fixture_delete(fixture)
        result = BenchResult("optimizer_pass")
        result.series = [
            Series("pass, first window (every rule fires)", "s", cold),
            Series("pass, next window (steady state)", "s", [steady]),
        ]
        result.checks = [
            Check(
                f"optimizer pass, {experiments:,} experiments x {variants} variants",
                float(np.median(cold)),
                5.0,
                "s",
                higher_is_better=False,
            )
        ]
        result.notes = [
            f"first-window proposals: {dict(sorted(kinds.items()))}",
            f"SQL statements in one pass: {len(queries)} ({experiments} experiments, chunks of 100)",
        ]
        result.setup = {
            "summary": f"{experiments:,} live experiments x {variants} arms (half bandits), "
            f"{fixture.exposures:,} exposures, {fixture.conversions:,} converting; each run resets the "
            "proposals and weights, so every timed pass is a first window in which every rule may fire",
            "experiments": experiments,
            "variants": variants,
            "exposures": fixture.exposures,
            "conversions": fixture.conversions,
        }
        return result

    def aa_benchmark(options: BenchOptions) -> BenchResult:
        tests = options.param("tests", 200, int)
        seeds = options.param("seeds", 3 if options.quick else 10, int)
        first_seed = options.param("seed", 20261121, int)
        results = [aa_false_positive_rate(n_tests=tests, seed=first_seed + i) for i in range(seeds)]
        for i, r in enumerate(results):
            options.log(
                f"   seed {first_seed + i}: fixed horizon {r.fixed_horizon_rate:.3f}, "
                f"sequential {r.sequential_rate:.3f}, peeking {r.peeking_fixed_rate:.3f} / "
                f"{r.peeking_sequential_rate:.3f}"
            )
        first = results[0]
        result = BenchResult("aa_false_positives")
        result.series = [
            Series(f"fixed-horizon rate, {tests} tests per seed", "share", [r.fixed_horizon_rate for r in results]),
            Series("always-valid (sequential) rate", "share", [r.sequential_rate for r in results]),
            Series(
                f"fixed-horizon, read at each of {first.looks} looks", "share", [r.peeking_fixed_rate for r in results]
            ),
            Series(
                f"always-valid, read at each of {first.looks} looks",
                "share",
                [r.peeking_sequential_rate for r in results],
            ),
        ]
        pooled = sum(r.fixed_horizon_rate for r in results) / len(results)
        pooled_peeking = sum(r.peeking_sequential_rate for r in results) / len(results)
        result.checks = [
            Check(
                f"A/A false-positive rate, fixed horizon, {tests} tests (seed {first_seed})",
                first.fixed_horizon_rate,
                0.03,
                "share",
            ),
            Check(
                f"A/A false-positive rate, fixed horizon, {tests} tests (seed {first_seed})",
                first.fixed_horizon_rate,
                0.07,
                "share",
                higher_is_better=False,
            ),
            Check(
                f"A/A false-positive rate, always-valid read at each of {first.looks} looks, "
                f"all {tests * seeds:,} tests",
                pooled_peeking,
                0.05,
                "share",
                higher_is_better=False,
            ),
        ]
        inside = sum(0.03 <= r.fixed_horizon_rate <= 0.07 for r in results)
        result.notes = [
            f"fixed horizon over all {tests * seeds:,} tests: {pooled:.4f}; {inside} of {seeds} seeds within 3-7% "
            f"(a 200-test rate has a standard error of {(0.05 * 0.95 / tests) ** 0.5:.3f})",
            f"always-valid figures only from {statistics.SEQUENTIAL_MIN_EXPOSURES:,} visitors and "
            f"{statistics.SEQUENTIAL_MIN_CONVERSIONS} conversions per arm (core.statistics)",
        ]
        result.setup = {
            "summary": f"{tests} A/A tests per seed, {first.visitors:,} visitors each in {first.looks} batches, "
            f"rate {first.rate}, alpha {first.alpha}; binomial draws (numpy), core.statistics.compare",
            "seeds": list(range(first_seed, first_seed + seeds)),
        }
        return result

    def bandit_benchmark(options: BenchOptions) -> BenchResult:
        visitors = options.param("visitors", 20_000, int)
        seeds = tuple(range(options.param("seeds", 5 if options.quick else 20, int)))
        approved = bandit_regret(visitors=visitors, seeds=seeds)
        unattended = bandit_regret(visitors=visitors, seeds=seeds, approve_large=False)
        result = BenchResult("bandit_regret")
        result.series = [
            Series("fixed 50/50 regret", "conversions", [approved.fixed_regret]),
            Series("bandit regret", "conversions", [approved.bandit_regret]),
            Series("ratio bandit / fixed", "", [approved.ratio]),
            Series("ratio, large moves never approved", "", [unattended.ratio]),
        ]
        result.checks = [
            Check("bandit regret / fixed 50/50 regret", approved.ratio, 0.5, "ratio", higher_is_better=False)
        ]
        result.notes = [
            f"the bandit showed the better arm to {approved.bandit_best_share:.1%} of visitors; "
            f"{approved.large_moves:.2f} reweights per run were above the guardrail and went to an approver "
            "(accepted before the next window here)",
            f"if no approver ever accepts a move above the guardrail, the ratio is {unattended.ratio:.2f}",
        ]
        result.setup = {
            "summary": f"rates {approved.rates}, {visitors:,} visitors in windows of {approved.batch}, "
            f"floor {approved.floor}, guardrail {approved.guardrail}, mean over {len(seeds)} seeds",
        }
        return result

    def winner_rule_benchmark(options: BenchOptions) -> BenchResult:
        from core.statistics import DEFAULT_POWER, sample_size_per_arm

        experiments = options.param("experiments", 60 if options.quick else 200, int)
        days = options.param("days", 14, int)
        seed = options.param("seed", 20261205, int)
        log = options.log
        log(f"   A/A: {experiments} experiments, {days} days")
        aa = optimizer_winner_rate(experiments=experiments, days=days, seed=seed, log=log)
        log(f"   A/A: {aa.winners} winner proposals of {aa.experiments} ({aa.rate:.3f})")
        rate, lift = 0.10, 0.20
        per_arm = sample_size_per_arm(rate, lift)
        daily = 2 * per_arm / days
        log(f"   +{lift:.0%} lift at {rate:.0%}: recommended {per_arm:,} per arm, {daily:,.0f} visitors a day")
        power = optimizer_winner_rate(
            experiments=experiments, days=days, daily_visitors=daily, base_rates=(rate, rate), lift=lift, seed=seed + 1
        )
        log(f"   power: {power.winners} winners of {power.experiments} ({power.rate:.3f})")
        result = BenchResult("winner_rule")
        result.series = [
            Series("A/A experiments with a winner proposal", "share", [aa.rate]),
            Series(f"+{lift:.0%} experiments with a winner proposal", "share", [power.rate]),
        ]
        result.checks = [
            Check(
                f"A/A winner proposals through the optimizer every {aa.cadence_minutes} min for {days} days",
                aa.rate,
                0.05,
                "share",
                higher_is_better=False,
            ),
            Check(
                f"power of the winner rule, +{lift:.0%} at the recommended {per_arm:,} per arm",
                power.rate,
                DEFAULT_POWER,
                "share",
            ),
        ]
        result.notes = [
            f"A/A: {aa.winners} of {aa.experiments} experiments got a winner proposal; other proposals "
            f"{aa.other_proposals}; {aa.decisions:,} decisions over {aa.windows:,} windows; "
            f"{aa.final_exposures_per_arm:,.0f} visitors per arm at the end",
            f"+{lift:.0%}: {power.winners} of {power.experiments} with a winner, median "
            f"{power.median_days_to_winner or 0:.1f} days to it; {power.final_exposures_per_arm:,.0f} visitors per "
            f"smaller arm at the winner or the end (recommended {per_arm:,})",
        ]
        result.setup = {
            "summary": f"two-arm 50/50 experiments through personalization.services.optimizer._optimize_one "
            f"every {aa.cadence_minutes} simulated minutes for {days} days; A/A: {aa.daily_visitors:,.0f} "
            f"visitors a day, rates {aa.base_rates[0]:.0%}-{aa.base_rates[1]:.0%}; power: {rate:.0%} vs "
            f"+{lift:.0%}, {daily:,.0f} visitors a day; minimum sample {aa.minimum_sample:,} per arm",
            "experiments": experiments,
            "seed": seed,
        }
        return result

    return [
        Benchmark(
            "optimizer_pass", "one optimizer pass over 1,000 live experiments x 5 variants", optimizer_pass_benchmark
        ),
        Benchmark(
            "aa_false_positives",
            "false-positive rate of 200 simulated A/A tests at alpha 0.05, read once and at every 100 visitors",
            aa_benchmark,
        ),
        Benchmark(
            "winner_rule",
            "winner proposals of the real optimizer decision code on A/A and on +20% experiments over 14 days",
            winner_rule_benchmark,
        ),
        Benchmark(
            "bandit_regret",
            "regret of the optimizer's bandit vs a fixed 50/50 split on a +20% winner",
            bandit_benchmark,
        ),
    ]
