"""The experiment optimizer: results per arm, bandit reweights, and proposals for approvers.

Counts. An arm's *exposures* are the distinct sessions with an :class:`Exposure` of the
experiment and the arm's variant (an exposure row is already the first one of its
session and variant), sessions of crawlers and headless browsers left out
(:func:`journeys.selectors.human_sessions`); its *conversions* are those exposed sessions that have a
:class:`ConversionEvent` of the experiment's primary goal at or after that exposure.
Counts come from one ``GROUP BY`` query for any number of experiments, so a pass costs
a constant number of queries per chunk of experiments, never one per session.

Bandits' statistics read counts by allocation period: the times their weights changed
(applied reweights and pauses) cut their exposures into periods, and each arm's rate is
the traffic-weighted mean of its per-period rates (:func:`core.statistics.period_weighted`),
so conversion rates that drift between reweights do not bias the comparison.

Statistics come from :mod:`core.statistics` (formulas documented there). The pass
computes lazily only what its rules read (the sample-ratio test, chances to be best,
chances to beat control); the full set of intervals is computed for the API and for
the evidence of proposals that go to an approver.

Sample-ratio mismatch is tested against the weights in force: the active (unpaused)
arms' current weights. When those weights changed (an applied reweight or pause), the
test counts only exposures since the change of visitors first assigned since the
change: visitors assigned earlier keep their sticky arm from the old weights, so
counting them would flag every bandit that moved.

Rules per live experiment and optimizer window (``now`` floored to
``settings.OPTIMIZER_CADENCE_MINUTES``), in this order:

1. SRM flagged: the data cannot be trusted, so nothing else is decided this window; a
   ``stop`` proposal goes to an approver.
2. Bandit reweight (allocation ``bandit``, every active arm with at least
   :data:`BANDIT_MIN_EXPOSURES` exposures): the Thompson sampling weights, i.e. each
   active arm's chance to be best, floored at the experiment's ``weight_floor``. A move
   under :data:`REWEIGHT_MIN_MOVE` for every arm is not worth a row and is skipped. If
   no arm moves by more than ``reweight_guardrail`` the weights are applied at once
   (``auto_applied``), otherwise a pending proposal names the guardrail.
3. Declare winner (:data:`WINNER_RULE`): an active treatment whose always-valid
   (sequential) p-value against the control, Holm-adjusted over the active treatments,
   is under :data:`WINNER_ALPHA` with a positive lift, every active arm at
   ``minimum_sample`` exposures, and no guardrail of that arm significantly worse
   (:func:`core.hooks.guardrails_worse`, filled by ``analytics``). The always-valid test
   may be read at every window without inflating false winners (the ``aa_false_positives``
   bench runs A/A experiments through this pass every 5 simulated minutes for 14 days);
   the former rule, chance to beat control >= 0.95 read every window, proposed a winner
   in 18% of A/A experiments.
4. Pause: active treatments with a chance to be best under :data:`PAUSE_CHANCE` after
   ``minimum_sample`` exposures, in one proposal; if that would pause every treatment
   the control is the clear best, and a ``stop`` is proposed instead.

Idempotency: a proposal is unique per (experiment, kind, window) (a database
constraint), and a pending proposal of a kind is not repeated while it waits; a
rejected one is not re-proposed for :data:`REJECTED_COOLDOWN`. A newer reweight
supersedes a pending older one when their target weights differ by
:data:`SUPERSEDE_MOVE` or more (the old weights went stale), or when the newer one is
small enough to apply itself. So a second run in the same window changes nothing.

Concurrency and crashes: experiments are processed in chunks, each in one
transaction that first locks its experiment rows with ``SKIP LOCKED``, so two workers
never handle one experiment at once, and a worker killed mid-chunk leaves nothing
half-written; the rerun (``acks_late``) recomputes the same answer.

Pending proposals enter the approval flow as an :class:`ApprovalRequest` whose
requester is the inactive system user ``optimizer`` (the model requires a requester);
:func:`proposal_decide` applies the approval rules to them. Every action is appended to
the proposal's ``evidence["actions"]`` and written to the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Max, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core import hooks, statistics
from core.config_cache import bump
from core.statistics import Arm
from journeys.models import ConversionEvent, JourneySession
from journeys.selectors import human_sessions_sql
from personalization.models import (
    Allocation,
    ApprovalRequest,
    ApprovalTemplate,
    Assignment,
    AuditLog,
    Experiment,
    ExperimentArm,
    Exposure,
    OptimizationProposal,
    ProposalKind,
    ProposalStatus,
    RequestStatus,
    Status,
)
from personalization.services import experiment_checks
from personalization.services.approvals import (
    DECISIONS_NAMESPACE,
    ApprovalError,
    NotAnApprover,
    NotPending,
    SelfApprovalRefused,
    audit,
    decision_check,
    is_approver,
)

BANDIT_MIN_EXPOSURES = 100
REWEIGHT_MIN_MOVE = 0.01
SUPERSEDE_MOVE = 0.05
WINNER_ALPHA = 0.05
WINNER_RULE = (
    "winner: an active treatment whose always-valid (sequential) p-value against the control, "
    f"Holm-adjusted over the active treatments, is under {WINNER_ALPHA}, with a positive lift, once every "
    "active arm has the experiment's minimum sample and no guardrail of that arm is significantly worse"
)
PAUSE_CHANCE = 0.01
REJECTED_COOLDOWN = timedelta(hours=24)
CHUNK_SIZE = 100
OPTIMIZER_USERNAME = "optimizer"


class ProposalStale(ApprovalError):
    """The experiment changed since the proposal was made; it cannot be applied as is."""

    code = "proposal_stale"


# --- counts ---------------------------------------------------------------------------


@dataclass
class ArmCounts:
    arm_id: int
    variant_id: int
    key: str
    is_control: bool
    is_paused: bool
    weight: float
    exposures: int = 0
    conversions: int = 0
    exposures_since: int = 0
    periods: dict[int, tuple[int, int]] = field(default_factory=dict)  # period -> (exposures, conversions)
    effective: Arm | None = None  # bandits: counts weighted by allocation period

    @property
    def arm(self) -> Arm:
        """The counts the statistics read: period-weighted for a bandit, else the plain counts."""
        return self.effective if self.effective is not None else Arm(self.exposures, self.conversions)


@dataclass
class ExperimentCounts:
    experiment: Experiment
    arms: list[ArmCounts] = field(default_factory=list)  # control first, then by arm id
    weights_since: datetime | None = None

    @property
    def active(self) -> list[ArmCounts]:
        return [arm for arm in self.arms if not arm.is_paused]

    @property
    def control(self) -> ArmCounts | None:
        return self.arms[0] if self.arms and self.arms[0].is_control else None

    def weigh_periods(self) -> None:
        """A bandit's arms read per allocation period (:func:`core.statistics.period_weighted`)."""
        periods = sorted({period for arm in self.arms for period in arm.periods})
        if self.experiment.allocation != Allocation.BANDIT or len(periods) < 2:
            return
        table = [[Arm(*arm.periods.get(period, (0, 0))) for arm in self.arms] for period in periods]
        for arm, effective in zip(self.arms, statistics.period_weighted(table), strict=True):
            arm.effective = effective


_CONVERSIONS = ConversionEvent._meta.db_table
_SESSIONS = JourneySession._meta.db_table
_ASSIGNMENTS = Assignment._meta.db_table
_EXPOSURES = Exposure._meta.db_table
_EXPERIMENTS = Experiment._meta.db_table

_PROPOSALS = OptimizationProposal._meta.db_table

# One row per (experiment, variant, allocation period); an exposure row is unique per
# (session, variant), so count(*) counts distinct sessions. A session converted after its
# exposure when its latest conversion of the goal is at or after it: one hashed join, no
# per-row subquery. ``since`` holds the experiments whose weights changed and when; their
# ``exposures_since`` count only visitors assigned since then. ``periods`` holds, for the
# bandits given, the sorted times their weights changed (applied reweights and pauses):
# an exposure's period is how many of them came at or before it (``width_bucket``).
# Only sessions a person started count (``{human}``: :func:`journeys.selectors.human_sessions_sql`).
_COUNTS_SQL = f"""
WITH since AS (
    SELECT * FROM unnest(%(since_ids)s::bigint[], %(since_at)s::timestamptz[]) AS t(experiment_id, at)
), periods AS (
    SELECT experiment_id, array_agg(decided_at ORDER BY decided_at) AS ats
    FROM {_PROPOSALS}
    WHERE experiment_id = ANY(%(bandit_ids)s) AND kind = ANY(%(change_kinds)s) AND status = ANY(%(change_statuses)s)
      AND decided_at IS NOT NULL
    GROUP BY experiment_id
), last_conversion AS (
    SELECT c.session_id, c.type, max(c.converted_at) AS at
    FROM {_CONVERSIONS} c
    WHERE c.session_id IN (SELECT session_id FROM {_EXPOSURES} WHERE experiment_id = ANY(%(ids)s))
    GROUP BY c.session_id, c.type
)
SELECT e.experiment_id, e.variant_id, coalesce(width_bucket(e.exposed_at, p.ats), 0) AS period,
       count(*) AS exposures,
       count(*) FILTER (WHERE lc.at >= e.exposed_at) AS conversions,
       count(*) FILTER (WHERE s.at IS NULL OR (e.exposed_at >= s.at AND EXISTS (
           SELECT 1 FROM {_SESSIONS} js JOIN {_ASSIGNMENTS} a ON a.visitor_id = js.visitor_id
           WHERE js.id = e.session_id AND a.experiment_id = e.experiment_id AND a.assigned_at >= s.at
       ))) AS exposures_since
FROM {_EXPOSURES} e
JOIN {_EXPERIMENTS} x ON x.id = e.experiment_id
LEFT JOIN last_conversion lc ON lc.session_id = e.session_id AND lc.type = x.primary_goal
LEFT JOIN since s ON s.experiment_id = e.experiment_id
LEFT JOIN periods p ON p.experiment_id = e.experiment_id
WHERE e.experiment_id = ANY(%(ids)s) AND {{human}}
GROUP BY e.experiment_id, e.variant_id, 3
"""
_CHANGE_KINDS = [ProposalKind.REWEIGHT, ProposalKind.PAUSE_VARIANT, ProposalKind.RESUME_VARIANT]
_CHANGE_STATUSES = [ProposalStatus.AUTO_APPLIED, ProposalStatus.APPROVED]


def _counts_for(experiments: Sequence[Experiment]) -> dict[int, ExperimentCounts]:
    """Arms and their counts (per allocation period for bandits) for every experiment given, in three queries."""
    counts = {experiment.pk: ExperimentCounts(experiment) for experiment in experiments}
    if not counts:
        return counts
    ids = list(counts)
    arms = ExperimentArm.objects.filter(experiment_id__in=ids).order_by("experiment_id", "-is_control", "id")
    by_variant: dict[tuple[int, int], ArmCounts] = {}
    for arm_id, experiment_id, variant_id, key, is_control, is_paused, weight in arms.values_list(
        "id", "experiment_id", "variant_id", "variant__key", "is_control", "is_paused", "weight"
    ):
        arm = ArmCounts(arm_id, variant_id, key, is_control, is_paused, weight)
        counts[experiment_id].arms.append(arm)
        by_variant[experiment_id, variant_id] = arm
    changes = (
        OptimizationProposal.objects.filter(
            experiment_id__in=ids,
            kind__in=_CHANGE_KINDS,
            status__in=_CHANGE_STATUSES,
        )
        .values("experiment_id")
        .annotate(at=Max("decided_at"))
    )
    for row in changes:
        counts[row["experiment_id"]].weights_since = row["at"]
    since = [(pk, c.weights_since) for pk, c in counts.items() if c.weights_since is not None]
    with transaction.atomic(), connection.cursor() as cursor:
        # JIT compilation costs more than this query takes (~0.5 s per call), and a
        # chunk's rows fit a hash aggregate in memory rather than a sort on disk.
        cursor.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)")
        cursor.execute(
            _COUNTS_SQL.format(human=human_sessions_sql("e.session_id")),
            {
                "ids": ids,
                "since_ids": [pk for pk, _ in since],
                "since_at": [at for _, at in since],
                "bandit_ids": [pk for pk, c in counts.items() if c.experiment.allocation == Allocation.BANDIT],
                "change_kinds": _CHANGE_KINDS,
                "change_statuses": _CHANGE_STATUSES,
            },
        )
        for experiment_id, variant_id, period, exposures, conversions, exposures_since in cursor.fetchall():
            arm = by_variant.get((experiment_id, variant_id))
            if arm is not None:
                arm.exposures += exposures
                arm.conversions += conversions
                arm.exposures_since += exposures_since
                arm.periods[period] = (exposures, conversions)
    for experiment_counts in counts.values():
        experiment_counts.weigh_periods()
    return counts


# --- statistics -----------------------------------------------------------------------


def effective_weights(arms: Sequence[ArmCounts]) -> list[float]:
    """Each arm's share of new traffic: active arms' weights normalized, paused arms 0."""
    total = sum(arm.weight for arm in arms if not arm.is_paused)
    active = [arm for arm in arms if not arm.is_paused]
    return [0.0 if arm.is_paused else (arm.weight / total if total > 0 else 1 / len(active)) for arm in arms]


def bandit_weights(arms: Sequence[Arm], floor: float, chances: Sequence[float] | None = None) -> list[float] | None:
    """Thompson sampling weights: each arm's chance to be best, floored per arm.

    None until every arm has :data:`BANDIT_MIN_EXPOSURES` exposures. A floor too high
    for the number of arms (floor * k > 1) is lowered to an equal split. ``chances``
    are the arms' chances to be best when the caller has them already.
    """
    if len(arms) < 2 or min(arm.exposures for arm in arms) < BANDIT_MIN_EXPOSURES:
        return None
    if chances is None:
        chances = statistics.chance_to_be_best(arms)
    return statistics.floored_weights(chances, min(floor, 1 / len(arms)))


def largest_move(current: Sequence[float], proposed: Sequence[float]) -> float:
    return max(abs(new - old) for old, new in zip(current, proposed, strict=True))


class ExperimentStats:
    """Statistics of one experiment's counts, each computed on first use."""

    def __init__(self, counts: ExperimentCounts) -> None:
        self.counts = counts
        self.experiment = counts.experiment

    @cached_property
    def srm(self) -> statistics.SampleRatio:
        active = self.counts.active
        return statistics.sample_ratio_mismatch([arm.exposures_since for arm in active], [a.weight for a in active])

    @cached_property
    def active_chance_to_be_best(self) -> list[float]:
        active = self.counts.active
        if not active:
            return []
        if len(active) == len(self.counts.arms):
            return self.chance_to_be_best
        return statistics.chance_to_be_best([arm.arm for arm in active])

    @cached_property
    def chance_to_be_best(self) -> list[float]:
        return statistics.chance_to_be_best([arm.arm for arm in self.counts.arms]) if self.counts.arms else []

    @cached_property
    def comparisons(self) -> list[statistics.Comparison | None]:
        """Each treatment against the control (:func:`core.statistics.compare`); None for the control."""
        control = self.counts.control
        return [
            None if control is None or arm is control else statistics.compare(control.arm, arm.arm)
            for arm in self.counts.arms
        ]

    @cached_property
    def chance_to_beat_control(self) -> list[float | None]:
        return [None if c is None else c.chance_to_win for c in self.comparisons]

    def holm_adjusted(self, field_name: str) -> list[float | None]:
        """Holm-adjusted p-values (``p_value`` or ``sequential_p_value``) over the active treatments."""
        indices = [i for i, c in enumerate(self.comparisons) if c is not None and not self.counts.arms[i].is_paused]
        adjusted = statistics.holm([getattr(self.comparisons[i], field_name) for i in indices])
        out: list[float | None] = [None] * len(self.counts.arms)
        for index, value in zip(indices, adjusted, strict=True):
            out[index] = value
        return out

    def srm_out(self) -> dict:
        return {
            "p_value": self.srm.p_value,
            "flagged": self.srm.flagged,
            "zero_weight_exposures": self.srm.zero_weight_exposures,
            "exposures": [arm.exposures_since for arm in self.counts.active],
            "weights": [arm.weight for arm in self.counts.active],
            "weights_since": self.counts.weights_since.isoformat() if self.counts.weights_since else None,
        }

    def counts_out(self) -> list[dict]:
        return [
            {
                "variant_id": arm.variant_id,
                "key": arm.key,
                "control": arm.is_control,
                "paused": arm.is_paused,
                "exposures": arm.exposures,
                "conversions": arm.conversions,
            }
            for arm in self.counts.arms
        ]

    @cached_property
    def results(self) -> dict:
        """Every number of every arm (control first); see :func:`experiment_results`."""
        arms = self.counts.arms
        control = self.counts.control
        loss = statistics.expected_loss([arm.arm for arm in arms]) if arms else []
        weights = effective_weights(arms) if arms else []
        holm = self.holm_adjusted("p_value")
        holm_sequential = self.holm_adjusted("sequential_p_value")
        variants = []
        for index, arm in enumerate(arms):
            row = {
                "variant_id": arm.variant_id,
                "key": arm.key,
                "control": arm.is_control,
                "paused": arm.is_paused,
                "weight": weights[index],
                "exposures": arm.exposures,
                "conversions": arm.conversions,
                "rate": arm.conversions / arm.exposures if arm.exposures else None,
                "period_weighted_rate": arm.effective.rate if arm.effective is not None else None,
                "ci_low": None,
                "ci_high": None,
                "chance_to_beat_control": self.chance_to_beat_control[index],
                "chance_to_be_best": self.chance_to_be_best[index],
                "expected_loss": loss[index],
                "relative_lift": None,
                "p_value": None,
                "confidence_low": None,
                "confidence_high": None,
                "sequential_low": None,
                "sequential_high": None,
                "sequential_p_value": None,
                "enough_data": None,
                "reason": None,
                "significant": None,
                "sequential_ready": None,
                "sequential_significant": None,
                "p_value_holm": holm[index],
                "sequential_p_value_holm": holm_sequential[index],
            }
            comparison = self.comparisons[index]
            if comparison is not None:
                row["ci_low"], row["ci_high"] = statistics.relative_lift_credible_interval(control.arm, arm.arm)
                row.update(
                    relative_lift=comparison.relative_lift,
                    p_value=comparison.p_value,
                    confidence_low=comparison.ci_low,
                    confidence_high=comparison.ci_high,
                    sequential_low=comparison.sequential_low,
                    sequential_high=comparison.sequential_high,
                    sequential_p_value=comparison.sequential_p_value,
                    enough_data=comparison.enough_data,
                    reason=comparison.reason,
                    significant=comparison.significant,
                    sequential_ready=comparison.sequential_ready,
                    sequential_significant=comparison.sequential_significant,
                )
            variants.append(row)
        return {
            "experiment": self.experiment.key,
            "status": self.experiment.status,
            "allocation": self.experiment.allocation,
            "primary_goal": self.experiment.primary_goal,
            "period_weighted": any(arm.effective is not None for arm in arms),
            "variants": variants,
            "srm": self.srm_out(),
            "winner_rule": WINNER_RULE,
            "sample_size": self.sample_size_out(),
        }

    def sample_size_out(self) -> dict:
        """Visitors per arm the winner rule needs (:func:`core.statistics.sample_size_per_arm`).

        For the experiment's minimum detectable effect (``minimum_detectable_effect`` when
        the experiment has one, else :data:`core.statistics.DEFAULT_MDE`) at the control's
        observed conversion rate, 80% power, alpha 0.05 split over the active treatments;
        ``more_per_arm`` is what the smallest active arm still lacks. None while the
        control has no conversion (no baseline to plan from).
        """
        control, active = self.counts.control, self.counts.active
        mde = getattr(self.experiment, "minimum_detectable_effect", None) or statistics.DEFAULT_MDE
        baseline = control.arm.rate if control is not None and control.exposures else None
        per_arm = None
        if baseline is not None and 0 < baseline < 1 and len(active) >= 2:
            try:
                per_arm = statistics.sample_size_per_arm(
                    baseline, mde, alpha=WINNER_ALPHA, power=statistics.DEFAULT_POWER, arms=len(active)
                )
            except ValueError:  # the lifted rate would reach 100%
                per_arm = None
        return {
            "metric": "conversion rate",
            "mde": mde,
            "power": statistics.DEFAULT_POWER,
            "alpha": WINNER_ALPHA,
            "baseline_rate": baseline,
            "per_arm": per_arm,
            "more_per_arm": statistics.more_units_per_arm(per_arm, [arm.exposures for arm in active]),
            "sequential": True,
        }


def experiment_results(*, experiment: Experiment) -> dict:
    """Per arm (control first): exposures, conversions, rate; Bayesian and frequentist numbers.

    ``ci_low``/``ci_high`` are the 95% credible interval of the relative lift over
    control, ``confidence_low``/``confidence_high`` the frequentist one with its
    ``p_value`` (one statistic: the p-value is under 0.05 exactly when the interval
    excludes 0), ``sequential_*`` the always-valid interval and p-value
    (:func:`core.statistics.compare`); all None for the control. A treatment without
    enough data (``enough_data`` False, ``reason`` says why: no control conversion, no
    variance in an arm) has no lift or interval and p-values of 1; the always-valid
    figures wait for the documented minimum (``sequential_ready``). ``p_value_holm`` and
    ``sequential_p_value_holm`` are adjusted by Holm over the active treatments (the
    winner rule reads the latter). Bandits' statistics use counts weighted by allocation
    period (``period_weighted``, ``period_weighted_rate``). ``weight`` is the arm's
    current share of new traffic (0 when paused). ``srm`` is the sample-ratio test
    against the weights in force (arms of weight 0 left out). ``sample_size`` is what the
    winner rule needs per arm and how many more visitors that is; ``winner_rule`` says
    the rule. Three queries (and a savepoint), whatever the traffic.
    """
    return ExperimentStats(_counts_for([experiment])[experiment.pk]).results


def proposals_pending(*, experiment: Experiment) -> list[OptimizationProposal]:
    return list(experiment.proposals.filter(status=ProposalStatus.PENDING).order_by("created_at", "id"))


# --- the pass -------------------------------------------------------------------------


def optimizer_window(now: datetime, cadence_minutes: int | None = None) -> str:
    """``now`` floored to the optimizer cadence, as an ISO string (the proposals' window)."""
    seconds = 60 * (cadence_minutes or settings.OPTIMIZER_CADENCE_MINUTES)
    return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, tz=UTC).isoformat()


def optimizer_user():
    """The requester of the optimizer's approval requests: a user that can never log in or decide."""
    user, created = get_user_model().objects.get_or_create(
        username=OPTIMIZER_USERNAME, defaults={"is_active": False, "is_staff": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


@dataclass
class _Pass:
    """What one chunk writes, collected so each kind of row is one statement."""

    now: datetime
    window: str
    actor: object
    proposals: list[OptimizationProposal] = field(default_factory=list)
    weights: list[ExperimentArm] = field(default_factory=list)
    audits: list[AuditLog] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)

    def action(self, action: str, **extra) -> dict:
        return {"at": self.now.isoformat(), "action": action, "by": OPTIMIZER_USERNAME, **extra}

    def supersede(self, proposal: OptimizationProposal) -> None:
        self.superseded.append(proposal.pk)


def experiments_optimize(*, site_id: int | None = None, now: datetime | None = None) -> list[OptimizationProposal]:
    """One optimizer pass over the live experiments (of one site, or all); returns new proposals.

    Idempotent per window; each chunk of experiments is one transaction holding row
    locks on its experiments (``SKIP LOCKED``: an experiment another worker holds is
    left to it).
    """
    now = now or timezone.now()
    window = optimizer_window(now)
    live = Experiment.objects.filter(status=Status.LIVE, ended_at=None).exclude(published=None)
    if site_id is not None:
        live = live.filter(site_id=site_id)
    ids = list(live.order_by("pk").values_list("pk", flat=True))
    if not ids:
        return []
    actor = optimizer_user()
    created: list[OptimizationProposal] = []
    for start in range(0, len(ids), CHUNK_SIZE):
        created += _optimize_chunk(ids[start : start + CHUNK_SIZE], now=now, window=window, actor=actor)
    return created


@transaction.atomic
def _optimize_chunk(ids: list[int], *, now: datetime, window: str, actor) -> list[OptimizationProposal]:
    experiments = list(
        Experiment.objects.select_for_update(skip_locked=True)
        .filter(pk__in=ids, status=Status.LIVE, ended_at=None)
        .exclude(published=None)
        .order_by("pk")
    )
    if not experiments:
        return []
    counts = _counts_for(experiments)
    known = (
        OptimizationProposal.objects.filter(experiment__in=experiments)
        .filter(
            Q(window=window)
            | Q(status=ProposalStatus.PENDING)
            | Q(status=ProposalStatus.REJECTED, decided_at__gte=now - REJECTED_COOLDOWN)
        )
        .only("id", "experiment_id", "kind", "window", "status", "proposed")
    )
    existing: dict[int, list[OptimizationProposal]] = {experiment.pk: [] for experiment in experiments}
    for proposal in known:
        existing[proposal.experiment_id].append(proposal)
    work = _Pass(now=now, window=window, actor=actor)
    for experiment in experiments:
        _optimize_one(ExperimentStats(counts[experiment.pk]), existing[experiment.pk], work)
    return _write(work)


def _optimize_one(stats: ExperimentStats, existing: list[OptimizationProposal], work: _Pass) -> None:
    experiment, counts = stats.experiment, stats.counts
    active = counts.active
    if len(active) < 2 or counts.control is None or counts.control.is_paused:
        return

    def blocked(kind: str) -> bool:
        """Already made this window, waiting for an approver, or recently rejected."""
        return any(p.kind == kind for p in existing)

    def propose(kind: str, **fields) -> OptimizationProposal:
        proposal = OptimizationProposal(experiment=experiment, kind=kind, window=work.window, **fields)
        work.proposals.append(proposal)
        return proposal

    if stats.srm.flagged:
        if not blocked(ProposalKind.STOP):
            propose(
                ProposalKind.STOP,
                status=ProposalStatus.PENDING,
                proposed={"reason": "sample_ratio_mismatch"},
                evidence={"rule": "srm", **stats.results, "actions": [work.action("proposed")]},
                confidence=1 - stats.srm.p_value,
                guardrail_reason=f"sample ratio mismatch (p = {stats.srm.p_value:.2g} < {statistics.SRM_ALPHA})",
            )
        return

    if experiment.allocation == Allocation.BANDIT and not any(
        p.kind == ProposalKind.REWEIGHT and p.window == work.window for p in existing
    ):
        _reweight(stats, existing, work, propose)

    minimum = experiment.minimum_sample
    if min(arm.exposures for arm in active) < minimum:
        return
    if not blocked(ProposalKind.DECLARE_WINNER):
        _propose_winner(stats, work, propose)

    best_of_active = dict(zip([arm.variant_id for arm in active], stats.active_chance_to_be_best, strict=True))
    losers = [arm for arm in active if not arm.is_control and best_of_active[arm.variant_id] < PAUSE_CHANCE]
    if not losers:
        return
    if len(losers) == len(active) - 1:
        if not blocked(ProposalKind.STOP):
            propose(
                ProposalKind.STOP,
                status=ProposalStatus.PENDING,
                proposed={"reason": "control_best"},
                evidence={"rule": "control_best", **stats.results, "actions": [work.action("proposed")]},
                confidence=best_of_active[counts.control.variant_id],
                guardrail_reason=f"stopping: every treatment's chance to be best is under {PAUSE_CHANCE}",
            )
        return
    if not blocked(ProposalKind.PAUSE_VARIANT):
        propose(
            ProposalKind.PAUSE_VARIANT,
            status=ProposalStatus.PENDING,
            proposed={"variants": [{"variant": arm.variant_id, "key": arm.key} for arm in losers]},
            evidence={"rule": "pause", **stats.results, "actions": [work.action("proposed")]},
            expected_impact={
                "traffic_freed": sum(effective_weights(counts.arms)[counts.arms.index(a)] for a in losers)
            },
            confidence=1 - max(best_of_active[arm.variant_id] for arm in losers),
            guardrail_reason=f"pausing: chance to be best under {PAUSE_CHANCE} after the minimum sample",
        )


def _propose_winner(stats: ExperimentStats, work: _Pass, propose) -> None:
    """The winner rule (:data:`WINNER_RULE`): always-valid, so reading it every window keeps its error rate.

    Among the treatments that pass, the one with the largest lift. A guardrail the
    analytics layer reports significantly worse for that arm
    (:func:`core.hooks.guardrails_worse`) blocks the proposal.
    """
    holm = stats.holm_adjusted("sequential_p_value")
    passing = [
        (stats.comparisons[index].relative_lift, holm[index], arm)
        for index, arm in enumerate(stats.counts.arms)
        if holm[index] is not None and holm[index] < WINNER_ALPHA and stats.comparisons[index].relative_lift > 0
    ]
    if not passing:
        return
    lift, p_value, best = max(passing, key=lambda item: item[0])
    if hooks.guardrails_worse(experiment=stats.experiment, variant_id=best.variant_id):
        return
    row = next(r for r in stats.results["variants"] if r["variant_id"] == best.variant_id)
    propose(
        ProposalKind.DECLARE_WINNER,
        status=ProposalStatus.PENDING,
        proposed={"variant": best.variant_id, "key": best.key},
        evidence={"rule": "winner", **stats.results, "actions": [work.action("proposed")]},
        expected_impact={
            "relative_lift": lift,
            "sequential_low": row["sequential_low"],
            "sequential_high": row["sequential_high"],
            "credible_low": row["ci_low"],
            "credible_high": row["ci_high"],
            "expected_loss": row["expected_loss"],
        },
        confidence=1 - p_value,
        guardrail_reason=f"declaring a winner: always-valid p = {p_value:.2g} < {WINNER_ALPHA} "
        f"(Holm over {sum(h is not None for h in holm)} treatments), lift {lift:+.1%}",
    )


def _reweight(stats: ExperimentStats, existing: list[OptimizationProposal], work: _Pass, propose) -> None:
    """Thompson sampling weights for a bandit: applied, proposed, or nothing (see the module rules)."""
    experiment, active = stats.experiment, stats.counts.active
    if min(arm.exposures for arm in active) < BANDIT_MIN_EXPOSURES:
        return
    arms = [arm.arm for arm in active]
    target = bandit_weights(arms, experiment.weight_floor, chances=stats.active_chance_to_be_best)
    current = effective_weights(active)
    move = largest_move(current, target)
    pending = [p for p in existing if p.kind == ProposalKind.REWEIGHT and p.status == ProposalStatus.PENDING]
    holding = [p for p in pending if _close(p, active, target)]
    for proposal in pending:
        if proposal not in holding:
            work.supersede(proposal)
    if move < REWEIGHT_MIN_MOVE:
        return
    large = move > experiment.reweight_guardrail
    refused = any(p.kind == ProposalKind.REWEIGHT and p.status == ProposalStatus.REJECTED for p in existing)
    if large and (holding or refused):
        # A waiting proposal still says what this one would, or an approver refused a
        # large move recently: no churn for the approvers. Small moves still apply.
        return
    means = [arm.posterior_mean for arm in arms]
    evidence = {
        "rule": "thompson_sampling",
        "counts": stats.counts_out(),
        "chance_to_be_best": stats.active_chance_to_be_best,
        "floor": min(experiment.weight_floor, 1 / len(active)),
        "largest_move": move,
        "guardrail": experiment.reweight_guardrail,
        "srm": stats.srm_out(),
    }
    fields = {
        "proposed": {
            "weights": [
                {"variant": arm.variant_id, "key": arm.key, "from": old, "to": new}
                for arm, old, new in zip(active, current, target, strict=True)
            ]
        },
        "expected_impact": {
            "expected_rate_from": sum(w * m for w, m in zip(current, means, strict=True)),
            "expected_rate_to": sum(w * m for w, m in zip(target, means, strict=True)),
        },
        "confidence": max(stats.active_chance_to_be_best),
    }
    if large:
        propose(
            ProposalKind.REWEIGHT,
            status=ProposalStatus.PENDING,
            evidence={**evidence, "actions": [work.action("proposed")]},
            guardrail_reason=f"an arm would move by {move:.3f} > guardrail {experiment.reweight_guardrail}",
            **fields,
        )
        return
    propose(
        ProposalKind.REWEIGHT,
        status=ProposalStatus.AUTO_APPLIED,
        decided_at=work.now,
        evidence={**evidence, "actions": [work.action("auto_applied")]},
        **fields,
    )
    work.weights += [ExperimentArm(pk=arm.arm_id, weight=w) for arm, w in zip(active, target, strict=True)]
    work.audits.append(
        AuditLog(
            actor=work.actor,
            action="optimizer_reweight",
            object_id=experiment.pk,
            object_repr=str(experiment)[:200],
            changes={"window": work.window, **fields["proposed"]},
        )
    )
    for proposal in holding:  # the applied weights replace what was waiting
        work.supersede(proposal)


def _close(proposal: OptimizationProposal, active: list[ArmCounts], target: list[float]) -> bool:
    proposed = {row["variant"]: row["to"] for row in proposal.proposed.get("weights", [])}
    if set(proposed) != {arm.variant_id for arm in active}:
        return False
    return largest_move([proposed[arm.variant_id] for arm in active], target) < SUPERSEDE_MOVE


def _write(work: _Pass) -> list[OptimizationProposal]:
    experiment_type = ContentType.objects.get_for_model(Experiment)
    proposal_type = ContentType.objects.get_for_model(OptimizationProposal)
    if work.superseded:
        _supersede(work.superseded, action=work.action("superseded"), now=work.now)
    if work.weights:
        ExperimentArm.objects.bulk_update(work.weights, ["weight"])
        bump(DECISIONS_NAMESPACE)
    proposals = OptimizationProposal.objects.bulk_create(work.proposals)
    pending = [p for p in proposals if p.status == ProposalStatus.PENDING]
    if pending:
        template = ApprovalTemplate.objects.get(object_type=proposal_type.model)
        ApprovalRequest.objects.bulk_create(
            ApprovalRequest(
                content_type=proposal_type,
                object_id=proposal.pk,
                version=1,
                snapshot=_proposal_snapshot(proposal),
                previous=None,
                template=template,
                requester=work.actor,
            )
            for proposal in pending
        )
    for audit_row in work.audits:
        audit_row.content_type = experiment_type
    work.audits += [
        AuditLog(
            actor=work.actor,
            action="submitted",
            content_type=proposal_type,
            object_id=proposal.pk,
            object_repr=str(proposal)[:200],
            changes={"kind": proposal.kind, "window": proposal.window, "proposed": proposal.proposed},
        )
        for proposal in pending
    ]
    AuditLog.objects.bulk_create(work.audits)
    hooks.feed("proposals_created", proposals=proposals)
    return proposals


def _proposal_snapshot(proposal: OptimizationProposal) -> dict:
    return {
        "experiment": proposal.experiment.key,
        "kind": proposal.kind,
        "window": proposal.window,
        "proposed": proposal.proposed,
        "expected_impact": proposal.expected_impact,
        "confidence": proposal.confidence,
        "guardrail_reason": proposal.guardrail_reason,
    }


# --- approvers' decisions -------------------------------------------------------------


@transaction.atomic
def proposal_decide(
    *,
    proposal: OptimizationProposal,
    decider,
    approve: bool,
    comment: str = "",
    checklist: dict | None = None,
) -> OptimizationProposal:
    """Approve (and apply) or reject a pending optimizer proposal. Refusals raise and change nothing.

    The rules of :func:`~personalization.services.approvals.approval_decide`: only a
    pending proposal, only an approver (Approvers group or superuser), never its
    requester (the ``optimizer`` system user; no human requested it, so any approver
    may decide), an approval that ticks every item of the proposal template's
    checklist and a rejection with a comment
    (:func:`~personalization.services.approvals.decision_check`). Approval applies the
    change under row locks on the experiment, the proposal and the arms: new weights,
    paused or resumed arms, or the experiment ended (a winner archives it and then
    serves to every visitor of the slot, a stop pauses it; other pending proposals are
    superseded). The same function decides the requests people make
    (:mod:`personalization.services.experiment_actions`), whose requester is that person.
    The decision is audited and the decision cache is invalidated on commit.
    """
    # Lock in the optimizer pass's order (experiment, then its proposals), so the two never deadlock.
    experiment_id = OptimizationProposal.objects.values_list("experiment_id", flat=True).get(pk=proposal.pk)
    experiment = Experiment.objects.select_for_update().get(pk=experiment_id)
    proposal = OptimizationProposal.objects.select_for_update().get(pk=proposal.pk)
    proposal_type = ContentType.objects.get_for_model(OptimizationProposal)
    request = (
        ApprovalRequest.objects.select_for_update()
        .filter(content_type=proposal_type, object_id=proposal.pk, status=RequestStatus.PENDING)
        .first()
    )
    if proposal.status != ProposalStatus.PENDING:
        raise NotPending(f"This proposal is {proposal.status}.")
    if request is not None and decider.pk == request.requester_id:
        raise SelfApprovalRefused("Nobody approves their own request.")
    if not is_approver(decider):
        raise NotAnApprover("Only approvers decide optimizer proposals.")
    template = ApprovalTemplate.objects.get(object_type=proposal_type.model) if request is None else request.template
    decision_check(template=template, approve=approve, comment=comment, checklist=checklist)
    now = timezone.now()
    applied = _apply(proposal, experiment, now) if approve else {}
    proposal.status = ProposalStatus.APPROVED if approve else ProposalStatus.REJECTED
    proposal.decided_at = now
    action = {"at": now.isoformat(), "action": proposal.status, "by": decider.get_username(), "comment": comment}
    proposal.evidence = {**proposal.evidence, "actions": [*proposal.evidence.get("actions", []), action]}
    proposal.save(update_fields=["status", "decided_at", "evidence"])
    if request is not None:
        request.status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
        request.decider = decider
        request.comment = comment
        request.checklist = checklist or {}
        request.decided_at = now
        request.save()
    audit(
        actor=decider,
        action="approved" if approve else "rejected",
        obj=proposal,
        changes={"kind": proposal.kind, "comment": comment, "checklist": checklist or {}},
    )
    if approve:
        by = "optimizer" if proposal.requested_by_id is None else "requested"
        audit(actor=decider, action=f"{by}_{proposal.kind}", obj=experiment, changes=applied)
        bump(DECISIONS_NAMESPACE)
    hooks.feed("proposal_decided", proposal=proposal, experiment=experiment)
    return proposal


def _apply(proposal: OptimizationProposal, experiment: Experiment, now: datetime) -> dict:
    """Make the proposed change; :class:`ProposalStale` when the experiment moved on
    (:func:`~personalization.services.experiment_checks.action_refusal`)."""
    arms = {
        arm.variant_id: arm
        for arm in ExperimentArm.objects.select_for_update().select_related("variant").filter(experiment=experiment)
    }
    refusal = experiment_checks.action_refusal(
        kind=proposal.kind, experiment=experiment, arms=list(arms.values()), proposed=proposal.proposed
    )
    if refusal is not None:
        raise ProposalStale(refusal[1])
    active = {variant_id for variant_id, arm in arms.items() if not arm.is_paused}
    proposed = proposal.proposed
    if proposal.kind == ProposalKind.REWEIGHT:
        weights = {row["variant"]: row["to"] for row in proposed["weights"]}
        if set(weights) != active:
            raise ProposalStale("The experiment's active arms changed since this reweight was proposed.")
        changes = {"weights": [{"variant": v, "from": arms[v].weight, "to": w} for v, w in weights.items()]}
        for variant_id, weight in weights.items():
            arms[variant_id].weight = weight
        ExperimentArm.objects.bulk_update([arms[v] for v in weights], ["weight"])
        return {"proposal": proposal.pk, **changes}
    if proposal.kind in (ProposalKind.PAUSE_VARIANT, ProposalKind.RESUME_VARIANT):
        # A paused arm gets no new visitors: the decision engine splits the traffic among
        # the active arms in proportion to their weights, so its share goes to them.
        named = [row["variant"] for row in proposed["variants"]]
        paused = proposal.kind == ProposalKind.PAUSE_VARIANT
        ExperimentArm.objects.filter(experiment=experiment, variant_id__in=named).update(is_paused=paused)
        return {"proposal": proposal.pk, "paused" if paused else "resumed": named}
    if proposal.kind == ProposalKind.DECLARE_WINNER:
        experiment.winner_id = proposed["variant"]
        experiment.status = Status.ARCHIVED
    else:
        experiment.status = Status.PAUSED  # a stop; after a winner, it ends the winner's rollout
    experiment.ended_at = experiment.ended_at or now
    experiment.save(update_fields=["winner", "status", "ended_at", "updated_at"])
    _supersede_pending(experiment, except_pk=proposal.pk, now=now)
    return {
        "proposal": proposal.pk,
        "status": experiment.status,
        "ended_at": experiment.ended_at.isoformat(),
        "winner": experiment.winner_id,
    }


def _supersede_pending(experiment: Experiment, *, except_pk: int, now: datetime) -> None:
    pending = experiment.proposals.filter(status=ProposalStatus.PENDING).exclude(pk=except_pk)
    action = {"at": now.isoformat(), "action": "superseded", "by": "experiment ended"}
    _supersede(list(pending.values_list("pk", flat=True)), action=action, now=now)


def _supersede(ids: list[int], *, action: dict, now: datetime) -> None:
    """Mark proposals superseded (the action appended to their evidence) and withdraw their requests."""
    if not ids:
        return
    OptimizationProposal.objects.filter(pk__in=ids, status=ProposalStatus.PENDING).update(
        status=ProposalStatus.SUPERSEDED,
        decided_at=now,
        evidence=RawSQL(
            "jsonb_set(evidence, '{actions}', COALESCE(evidence -> 'actions', '[]'::jsonb) || %s::jsonb)",
            [json.dumps([action])],
        ),
    )
    ApprovalRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(OptimizationProposal),
        object_id__in=ids,
        status=RequestStatus.PENDING,
    ).update(status=RequestStatus.WITHDRAWN, decided_at=now)
