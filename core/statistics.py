"""Experiment statistics: plain functions over counts and sums, each formula stated where it lives.

Conventions: the control is arm 0 where an order matters; a *unit* is an exposed
session. Every figure is a float, or None where it is undefined (a rate over zero
exposures, a lift over a zero baseline). Relative lifts are fractions (0.12 = +12%);
formatting them in percent is the page's job.

Metrics from sufficient statistics (what one SQL ``GROUP BY`` gives), as gbstats and
PostHog model them:

- :func:`proportion` ``(n, conversions)``: a conversion rate; per-unit variance p(1 - p).
- :func:`mean` ``(n, total, sum_squares)``: e.g. revenue per session; per-unit variance
  the sample variance (sum_squares - total^2 / n) / (n - 1).
- :func:`ratio` ``(n, numerator sums, denominator sums, cross sum)``: e.g. average order
  value = revenue / orders over the same sessions; the delta method gives its per-unit
  variance (var_m - 2 r cov_md + r^2 var_d) / mean_d^2 with r = mean_m / mean_d.

Comparisons (:func:`compare`), the frequentist engine of GrowthBook (gbstats
``TwoSidedTTest`` / ``SequentialTwoSidedTTest``) and PostHog:

- One statistic behind the p-value and the interval: the relative lift
  mean_t / mean_c - 1 with its unpooled delta-method variance
  Var = var_t / (n_t mean_c^2) + mean_t^2 var_c / (n_c mean_c^4); the p-value is the
  two-sided Welch t test of lift / sqrt(Var) (Welch-Satterthwaite degrees of freedom),
  the interval lift +- t_{1-alpha/2} sqrt(Var). So the interval excludes 0 exactly
  when p < alpha.
- "Not enough data" (gbstats' ZERO_NEGATIVE_VARIANCE / BASELINE_VARIATION_ZERO): an arm
  under 2 units, a zero control mean, or a zero or negative variance in either arm
  (e.g. 2/50 against 0/50): no lift, no interval, p = 1, no chance to win.
- Always-valid (sequential) interval: the asymptotic confidence sequence of
  Waudby-Smith et al. 2023 as GrowthBook uses it: with N = n_c + n_t, sigma^2 = N Var
  and tuning N* = :data:`SEQUENTIAL_TUNING`, rho^2 = (-2 log alpha + log(-2 log alpha + 1)) / N*,
  half-width sqrt(sigma^2 (N rho^2 + 1) / (N^2 rho^2) log((N rho^2 + 1) / alpha^2)).
  Its p-value is 1 / e-value (their eq. 155, as GrowthBook and PostHog compute it):
  e = exp(rho^2 S / (2 (N rho^2 + 1))) / sqrt(N rho^2 + 1) with S = lift^2 N^2 / sigma^2,
  capped at 1; it is below alpha exactly when the sequence excludes 0.
  The sequence is asymptotic: its variance is estimated, and at small samples it
  covers too little (an A/A test read every 100 visitors flags 13.5% by 10,000
  visitors). So sequential figures exist only from :data:`SEQUENTIAL_MIN_EXPOSURES`
  units in the two arms together and :data:`SEQUENTIAL_MIN_CONVERSIONS` conversions
  in each (for proportions); before that the sequential p-value is 1 and there is no
  sequential interval. The bench (``aa_false_positives``) measures the peeking rate.
- Chance to win: P(treatment's metric > control's). For proportions with whole counts
  the exact Beta posterior closed form (:func:`chance_to_beat`); for means, ratios and
  period-weighted counts the normal approximation Phi(lift / sqrt(Var)) of gbstats'
  uplift distribution.

Bayesian model of conversion rates: each arm's rate has a Beta(1 + x, 1 + n - x)
posterior (uniform Beta(1, 1) prior, binomial likelihood).

- Chance to beat control: the exact closed form for two Beta posteriors with integer
  parameters (Evan Miller, "Formulas for Bayesian A/B testing"):
  P(B > A) = sum_{i=0}^{aB-1} exp(lbeta(aA+i, bA+bB) - log(bB+i) - lbeta(1+i, bB) - lbeta(aA, bA)).
- Chance to be best and expected loss: numerical integration on a grid of the
  posteriors' densities and distribution functions, P(best_i) = int f_i(t) prod_{j!=i} F_j(t) dt,
  E[max_j p_j] = int_0^1 (1 - prod_j F_j(t)) dt, expected loss of choosing i =
  E[max_j p_j] - E[p_i]. Thompson sampling allocates to arm i with probability
  exactly P(best_i), so bandit weights are these chances (with a floor per arm). These
  accept effective (non-integer) counts, see :func:`period_weighted`.
- Credible interval of the relative lift p_t / p_c - 1: log-normal approximation of
  the ratio of posteriors, log(p_t/p_c) ~ N(log(m_t/m_c), v_t/m_t^2 + v_c/m_c^2), with
  m, v the Beta posterior means and variances (GrowthBook's approach).

Bandit counts by allocation period (:func:`period_weighted`, GrowthBook's bandit
approach): when weights change, conversion rates that drift (weekday, campaign) would
bias counts pooled across periods (Simpson's paradox). Each arm's rate is instead the
mean of its per-period rates weighted by each period's share of all traffic, with
effective counts n_eff = 1 / sum_p(w_p^2 / n_p), x_eff = rate * n_eff (the same variance
as that weighted mean); one period gives the plain counts back.

Several comparisons read together: :func:`holm` (family-wise error) and
:func:`benjamini_hochberg` (false discovery rate) adjusted p-values, as statsmodels'
``multipletests`` (methods ``holm`` and ``fdr_bh``) computes them.

Power: :func:`sample_size_per_arm` (per arm, for a relative minimum detectable effect,
fixed-horizon or for the always-valid test) and :func:`expected_duration_days`.

Sample-ratio mismatch: Pearson chi-square of observed exposures against the intended
weights (scipy.stats.chisquare), flagged at p < 0.001 once every arm has at least 8
exposures; arms with weight 0 (paused, or floored to 0) are left out of the test (their
expected count is 0, so any exposure there is recorded in ``zero_weight_exposures``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property

import numpy as np
from scipy import special, stats

SRM_ALPHA = 0.001
SRM_MIN_EXPOSURES = 8
SEQUENTIAL_TUNING = 5000
# Below these, the always-valid figures are not shown (see the module docstring; the
# aa_false_positives bench measures the peeking false-positive rate they give).
SEQUENTIAL_MIN_EXPOSURES = 1000
SEQUENTIAL_MIN_CONVERSIONS = 25
GRID_POINTS = 2000
# The power figure's defaults where an experiment names none: +10% relative, 80% power.
DEFAULT_MDE = 0.10
DEFAULT_POWER = 0.8


@dataclass(frozen=True)
class Arm:
    exposures: int
    conversions: int

    @property
    def rate(self) -> float | None:
        return self.conversions / self.exposures if self.exposures else None

    @property
    def alpha(self) -> int:
        return 1 + self.conversions

    @property
    def beta(self) -> int:
        return 1 + self.exposures - self.conversions

    @property
    def posterior_mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def posterior_var(self) -> float:
        a, b = self.alpha, self.beta
        return a * b / ((a + b) ** 2 * (a + b + 1))


def chance_to_beat(control: Arm, treatment: Arm) -> float:
    """P(p_treatment > p_control) under the Beta posteriors, exact closed form."""
    a_a, b_a, a_b, b_b = control.alpha, control.beta, treatment.alpha, treatment.beta
    i = np.arange(a_b, dtype=float)
    terms = special.betaln(a_a + i, b_a + b_b) - np.log(b_b + i) - special.betaln(1 + i, b_b) - special.betaln(a_a, b_a)
    return float(min(1.0, max(0.0, np.exp(special.logsumexp(terms)))))


def _grid(arms: Sequence[Arm]) -> tuple[np.ndarray, float]:
    """An even grid over every arm's 1e-7..1-1e-7 posterior quantiles, and its step."""
    a = np.array([arm.alpha for arm in arms], dtype=float)
    b = np.array([arm.beta for arm in arms], dtype=float)
    low = float(special.betaincinv(a, b, 1e-7).min())
    high = float(special.betaincinv(a, b, 1 - 1e-7).max())
    grid = np.linspace(low, high, GRID_POINTS)
    return grid, (high - low) / (GRID_POINTS - 1)


def _trapezoid(values: np.ndarray, step: float) -> float:
    """The trapezoid rule on an even grid (numpy.trapezoid's value, without its overhead)."""
    return float(step * (values.sum() - (values[0] + values[-1]) / 2))


def _densities(arms: Sequence[Arm], grid: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Beta pdf and cdf of every arm on the grid (arrays arms x points).

    The cdf is the running trapezoid integral of the pdf, normalized to end at 1: the
    grid spans every arm's 1e-7..1-1e-7 quantiles, so nothing measurable is cut off,
    and it is much cheaper than the incomplete beta function at every point. On the
    even grid the running trapezoid is step * (cumsum(pdf) - (pdf_0 + pdf_j) / 2). These
    run on every optimizer pass for every experiment, hence the few numpy calls.
    """
    a = np.array([[arm.alpha] for arm in arms], dtype=float)
    b = np.array([[arm.beta] for arm in arms], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pdf = np.exp((a - 1) * np.log(grid) + (b - 1) * np.log1p(-grid) - special.betaln(a, b))
    pdf[~np.isfinite(pdf)] = 0.0
    cdf = np.cumsum(pdf, axis=1)
    cdf -= (pdf + pdf[:, :1]) / 2
    cdf /= cdf[:, -1:]
    return pdf, cdf


def chance_to_be_best(arms: Sequence[Arm]) -> list[float]:
    """P(arm i has the highest rate), by integration on a grid; sums to 1."""
    if len(arms) == 1:
        return [1.0]
    grid, step = _grid(arms)
    pdf, cdf = _densities(arms, grid, step)
    if len(arms) == 2:
        chances = [_trapezoid(pdf[0] * cdf[1], step), _trapezoid(pdf[1] * cdf[0], step)]
    else:
        chances = [
            _trapezoid(pdf[index] * np.prod(np.delete(cdf, index, axis=0), axis=0), step) for index in range(len(arms))
        ]
    total = sum(chances)
    return [chance / total for chance in chances]


def expected_loss(arms: Sequence[Arm]) -> list[float]:
    """E[max_j p_j - p_i] for each arm i: what choosing it costs, in rate units."""
    grid, step = _grid(arms)
    cdf = np.prod(_densities(arms, grid, step)[1], axis=0)
    # E[max] = int_0^1 (1 - F_max); below the grid F_max is ~0, above it ~1.
    expected_max = float(grid[0] + _trapezoid(1 - cdf, step))
    return [max(0.0, expected_max - arm.posterior_mean) for arm in arms]


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def relative_lift_credible_interval(control: Arm, treatment: Arm, level: float = 0.95) -> tuple[float, float]:
    m_c, m_t = control.posterior_mean, treatment.posterior_mean
    sd = math.sqrt(treatment.posterior_var / m_t**2 + control.posterior_var / m_c**2)
    z = _z(1 - level)
    centre = math.log(m_t / m_c)
    return math.exp(centre - z * sd) - 1, math.exp(centre + z * sd) - 1


# --- metric summaries -------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """One arm's metric: ``n`` units, the metric's ``mean`` per unit and per-unit ``variance``.

    ``Var(mean) = variance / n``. ``kind`` is ``proportion``, ``mean`` or ``ratio``;
    ``conversions`` is set for proportions (the Beta posterior needs the counts).
    ``mean``/``variance`` are None when undefined (no units; a ratio whose denominator
    sums to 0; a mean or ratio over fewer than 2 units has no sample variance).
    """

    kind: str
    n: int
    mean: float | None
    variance: float | None
    conversions: int | None = None


def proportion(n: int, conversions: int) -> Summary:
    """A conversion rate: ``conversions`` of ``n`` units; per-unit variance p(1 - p)."""
    if conversions < 0 or conversions > n:
        raise ValueError("conversions must be between 0 and n")
    if n <= 0:
        return Summary("proportion", 0, None, None, conversions)
    p = conversions / n
    return Summary("proportion", n, p, p * (1 - p), conversions)


def mean(n: int, total: float, sum_squares: float) -> Summary:
    """A mean per unit (e.g. revenue per session, sessions without revenue counting 0).

    ``total`` = sum of the values, ``sum_squares`` = sum of their squares; the per-unit
    variance is the sample variance (sum_squares - total^2 / n) / (n - 1), which rounding
    can make slightly negative (then "not enough data", as in gbstats).
    """
    if n <= 0:
        return Summary("mean", 0, None, None)
    m = total / n
    variance = (sum_squares - total**2 / n) / (n - 1) if n > 1 else None
    return Summary("mean", n, m, variance)


def ratio(
    n: int,
    numerator_sum: float,
    numerator_sum_squares: float,
    denominator_sum: float,
    denominator_sum_squares: float,
    cross_sum: float,
) -> Summary:
    """A ratio of two per-unit sums, e.g. average order value = revenue / orders (delta method).

    Each of the ``n`` units contributes a numerator m_i and a denominator d_i;
    ``cross_sum`` = sum of m_i d_i. mean = sum m / sum d; per-unit variance
    (var_m - 2 r cov_md + r^2 var_d) / mean_d^2 with r = mean, the sample (co)variances
    over the units (n - 1), as gbstats' ``RatioStatistic``.
    """
    if n <= 1 or denominator_sum == 0:
        return Summary("ratio", max(n, 0), numerator_sum / denominator_sum if denominator_sum else None, None)
    mean_m, mean_d = numerator_sum / n, denominator_sum / n
    var_m = (numerator_sum_squares - numerator_sum**2 / n) / (n - 1)
    var_d = (denominator_sum_squares - denominator_sum**2 / n) / (n - 1)
    cov = (cross_sum - numerator_sum * denominator_sum / n) / (n - 1)
    r = mean_m / mean_d
    variance = (var_m - 2 * r * cov + r**2 * var_d) / mean_d**2
    return Summary("ratio", n, r, variance)


def _summary(metric: Summary | Arm) -> Summary:
    return proportion(metric.exposures, metric.conversions) if isinstance(metric, Arm) else metric


# --- comparing two arms -----------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A treatment against the control on one metric (see :func:`compare`).

    ``enough_data`` False means "not enough data" (``reason`` says why): then
    ``relative_lift``, the intervals and ``chance_to_win`` are None and both p-values 1.
    ``sequential_ready`` False (below the documented minimum) means no sequential
    interval and a sequential p-value of 1, whatever the fixed-horizon figures say.
    """

    alpha: float
    enough_data: bool
    reason: str | None  # None, "no_units", "zero_baseline" or "zero_variance"
    control_mean: float | None
    treatment_mean: float | None
    relative_lift: float | None
    standard_error: float | None  # of the relative lift
    ci_low: float | None
    ci_high: float | None
    p_value: float
    significant: bool  # p_value < alpha, i.e. the interval excludes 0
    sequential_ready: bool
    sequential_low: float | None
    sequential_high: float | None
    sequential_p_value: float
    sequential_significant: bool  # sequential_p_value < alpha, i.e. the sequence excludes 0
    _chance: Callable[[], float] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def chance_to_win(self) -> float | None:
        """P(treatment better than control); None without enough data (computed on first use)."""
        return self._chance() if self._chance is not None else None

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        out["chance_to_win"] = self.chance_to_win
        return out


def welch_dof(control: Summary, treatment: Summary) -> float:
    """Welch-Satterthwaite degrees of freedom of the two arms' means."""
    a = treatment.variance / treatment.n
    b = control.variance / control.n
    return (a + b) ** 2 / (a**2 / (treatment.n - 1) + b**2 / (control.n - 1))


def relative_lift_variance(control: Summary, treatment: Summary) -> float:
    """Unpooled delta-method variance of mean_t / mean_c - 1 (independent arms)."""
    m_c, m_t = control.mean, treatment.mean
    return treatment.variance / (treatment.n * m_c**2) + m_t**2 * control.variance / (control.n * m_c**4)


def sequential_rho2(alpha: float, tuning: int = SEQUENTIAL_TUNING) -> float:
    """rho^2 of the confidence sequence, tuned to be tightest near ``tuning`` units."""
    return (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning


def sequential_half_width(*, variance: float, total: int, alpha: float, tuning: int = SEQUENTIAL_TUNING) -> float:
    """Half-width of the always-valid interval; ``variance`` is Var(lift), ``total`` = n_c + n_t."""
    sigma2 = variance * total
    rho2 = sequential_rho2(alpha, tuning)
    return math.sqrt(sigma2 * (total * rho2 + 1) / (total**2 * rho2) * math.log((total * rho2 + 1) / alpha**2))


def sequential_p_value(
    *, lift: float, variance: float, total: int, alpha: float, tuning: int = SEQUENTIAL_TUNING
) -> float:
    """Always-valid p-value, 1 / e-value (Waudby-Smith et al. eq. 155), capped at 1."""
    rho2 = sequential_rho2(alpha, tuning)
    tr2p1 = total * rho2 + 1
    st2 = lift**2 * total / variance  # lift^2 N^2 / sigma^2 with sigma^2 = N Var
    log_e = rho2 * st2 / (2 * tr2p1) - 0.5 * math.log(tr2p1)
    return float(min(1.0, math.exp(-log_e))) if log_e > -700 else 1.0


def _sequential_ready(control: Summary, treatment: Summary, minimum: int) -> bool:
    if control.n + treatment.n < minimum:
        return False
    if control.kind == "proportion":
        return min(control.conversions, treatment.conversions) >= SEQUENTIAL_MIN_CONVERSIONS
    return True


def compare(
    control: Summary | Arm,
    treatment: Summary | Arm,
    *,
    alpha: float = 0.05,
    sequential_minimum: int = SEQUENTIAL_MIN_EXPOSURES,
    tuning: int = SEQUENTIAL_TUNING,
) -> Comparison:
    """The treatment's relative lift over the control, its fixed-horizon and always-valid figures.

    Accepts :class:`Summary` (any metric, both of one kind) or :class:`Arm` counts. See
    the module docstring for every formula and the "not enough data" rule.
    """
    control, treatment = _summary(control), _summary(treatment)
    if control.kind != treatment.kind:
        raise ValueError("compare two summaries of the same kind")

    def not_enough(reason: str) -> Comparison:
        return Comparison(
            alpha, False, reason, control.mean, treatment.mean, None, None, None, None, 1.0, False,
            False, None, None, 1.0, False,
        )  # fmt: skip

    if control.n < 2 or treatment.n < 2 or control.mean is None or treatment.mean is None:
        return not_enough("no_units")
    if control.mean == 0:
        return not_enough("zero_baseline")
    if control.variance is None or treatment.variance is None or control.variance <= 0 or treatment.variance <= 0:
        return not_enough("zero_variance")
    lift = treatment.mean / control.mean - 1
    variance = relative_lift_variance(control, treatment)
    se = math.sqrt(variance)
    dof = welch_dof(control, treatment)
    # scipy.special's Student t functions: stats.t's values, without its per-call overhead.
    p_value = float(2 * special.stdtr(dof, -abs(lift) / se))
    half = float(special.stdtrit(dof, 1 - alpha / 2)) * se
    counts = (control.n, control.conversions, treatment.n, treatment.conversions)
    if control.kind == "proportion" and all(float(count).is_integer() for count in counts):

        def chance() -> float:
            return chance_to_beat(Arm(control.n, control.conversions), Arm(treatment.n, treatment.conversions))
    else:  # means, ratios, and period-weighted (non-integer) counts

        def chance() -> float:
            return float(special.ndtr(lift / se))

    ready = _sequential_ready(control, treatment, sequential_minimum)
    total = control.n + treatment.n
    seq_low = seq_high = None
    seq_p = 1.0
    if ready:
        seq_half = sequential_half_width(variance=variance, total=total, alpha=alpha, tuning=tuning)
        seq_low, seq_high = lift - seq_half, lift + seq_half
        seq_p = sequential_p_value(lift=lift, variance=variance, total=total, alpha=alpha, tuning=tuning)
    return Comparison(
        alpha=alpha,
        enough_data=True,
        reason=None,
        control_mean=control.mean,
        treatment_mean=treatment.mean,
        relative_lift=lift,
        standard_error=se,
        ci_low=lift - half,
        ci_high=lift + half,
        p_value=p_value,
        significant=p_value < alpha,
        sequential_ready=ready,
        sequential_low=seq_low,
        sequential_high=seq_high,
        sequential_p_value=seq_p,
        sequential_significant=seq_p < alpha,
        _chance=chance,
    )


def two_proportion_p_value(control: Arm, treatment: Arm) -> float:
    """The classical pooled two-proportion z test (= chi-square without correction).

    Not what :func:`compare` reports (its p-value and interval come from one unpooled
    statistic); kept as an independent cross-check in tests.
    """
    n_c, n_t = control.exposures, treatment.exposures
    pooled = (control.conversions + treatment.conversions) / (n_c + n_t)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    if se == 0:
        return 1.0
    z = (treatment.rate - control.rate) / se
    return float(2 * stats.norm.sf(abs(z)))


# --- several comparisons ----------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given (family-wise error at alpha).

    Sorted ascending, the i-th (0-based) of m is adjusted to max_{j<=i} min(1, (m - j) p_(j)).
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given (false discovery rate).

    Sorted ascending, the i-th (1-based) of m is min_{j>=i} min(1, m p_(j) / j).
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m - 1, -1, -1):
        index = order[rank]
        running = min(running, m * p_values[index] / (rank + 1))
        adjusted[index] = min(1.0, running)
    return adjusted


# --- power ------------------------------------------------------------------------------


def sample_size_per_arm(
    baseline: float | Summary,
    mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
    sequential: bool = True,
) -> int | None:
    """Units per arm for ``power`` to detect a relative lift of ``mde`` (0.1 = +10%).

    ``baseline`` is the control's conversion rate (a float in (0, 1)) or any
    :class:`Summary` (its mean and per-unit variance; the treatment is assumed to
    have the same per-unit coefficient of variation, and for proportions the variance
    p(1 - p) at the lifted rate). With more than two arms alpha is split over the
    ``arms - 1`` comparisons with control (Bonferroni, the bound Holm never exceeds).
    ``sequential`` (the default, what the optimizer's winner rule uses): the size at
    which the always-valid test, read at that size, has the power; else the
    fixed-horizon test's. None when the baseline has no mean or variance to work from.
    Power of the two-sided test: Phi((mde - h) / se) + Phi((-mde - h) / se), h the
    half-width at alpha (z_{1-alpha/2} se, or the sequence's), solved for the smallest n.
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must be between 0 and 1")
    if mde <= 0 or mde > 10:
        raise ValueError("mde must be a positive relative lift (0.1 = +10%)")
    if arms < 2:
        raise ValueError("an experiment has at least two arms")
    if isinstance(baseline, Summary):
        m_c, var_c = baseline.mean, baseline.variance
        if m_c is None or var_c is None or m_c == 0 or var_c <= 0:
            return None
        m_t = m_c * (1 + mde)
        var_t = m_t * (1 - m_t) if baseline.kind == "proportion" else var_c * (1 + mde) ** 2
    else:
        if not 0 < baseline < 1:
            return None
        m_c, var_c = baseline, baseline * (1 - baseline)
        m_t = m_c * (1 + mde)
        if m_t >= 1:
            raise ValueError("the lifted rate would reach 100%")
        var_t = m_t * (1 - m_t)
    if var_t <= 0:
        return None
    alpha = alpha / (arms - 1)
    per_unit = var_t / m_c**2 + m_t**2 * var_c / m_c**4  # Var(lift) * n, equal arms

    def achieved(n: int) -> float:
        se = math.sqrt(per_unit / n)
        h = sequential_half_width(variance=se**2, total=2 * n, alpha=alpha) if sequential else _z(alpha) * se
        return float(special.ndtr((mde - h) / se) + special.ndtr((-mde - h) / se))

    z = _z(alpha) + float(stats.norm.ppf(power))
    low = max(2, math.floor(z**2 * per_unit / mde**2 / 2))
    high = max(low + 1, math.ceil(z**2 * per_unit / mde**2) + 1)
    while achieved(high) < power:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if achieved(middle) >= power:
            high = middle
        else:
            low = middle
    return high if achieved(low) < power else low


def expected_duration_days(per_arm: int | None, *, arms: int, daily_units: float, share: float = 1.0) -> float | None:
    """Days until every arm has ``per_arm`` units, at ``daily_units`` eligible units a day.

    ``share`` is the part of that traffic the experiment gets (1 = all of the slot's
    sessions); arms are assumed equally weighted. None without traffic or a size.
    """
    if per_arm is None or daily_units <= 0 or share <= 0:
        return None
    return per_arm * arms / (daily_units * share)


def more_units_per_arm(per_arm: int | None, exposures: Sequence[int]) -> int | None:
    """How many more units the smallest arm needs to reach ``per_arm`` (0 when it has)."""
    if per_arm is None or not exposures:
        return None
    return max(0, per_arm - min(exposures))


# --- bandit counts by allocation period ---------------------------------------------------


def period_weighted(periods: Sequence[Sequence[Arm]]) -> list[Arm]:
    """Each arm's effective counts over allocation periods (one list of arms per period).

    Period p has weight w_p = its units (all arms) / all units. An arm's rate is
    sum_p w_p rate_{arm,p} / sum_p w_p over the periods where it had units, and its
    effective exposures n_eff = (sum w)^2 / sum_p(w_p^2 / n_{arm,p}), conversions
    rate * n_eff (floats; :func:`chance_to_be_best` and :func:`expected_loss` accept
    them). With one period, or the same split in every period, these are the pooled
    counts. An arm with no units anywhere gets ``Arm(0, 0)``.
    """
    if not periods:
        return []
    k = len(periods[0])
    totals = [sum(arm.exposures for arm in period) for period in periods]
    grand = sum(totals)
    out = []
    for index in range(k):
        weight_sum = rate_sum = inverse = 0.0
        for period, total in zip(periods, totals, strict=True):
            arm = period[index]
            if not arm.exposures:
                continue
            w = total / grand
            weight_sum += w
            rate_sum += w * arm.conversions / arm.exposures
            inverse += w**2 / arm.exposures
        if not weight_sum:
            out.append(Arm(0, 0))
            continue
        n_eff = weight_sum**2 / inverse
        out.append(Arm(n_eff, rate_sum / weight_sum * n_eff))
    return out


# --- sample ratio and bandit weights ---------------------------------------------------


@dataclass(frozen=True)
class SampleRatio:
    p_value: float | None
    flagged: bool
    zero_weight_exposures: int = 0  # exposures in arms whose intended weight is 0


def sample_ratio_mismatch(exposures: Sequence[int], weights: Sequence[float]) -> SampleRatio:
    """Chi-square goodness of fit of exposures to the intended weights.

    Arms with weight 0 are left out (an expected count of 0 has no chi-square term; a
    paused arm may still show sticky visitors); their exposures are counted in
    ``zero_weight_exposures``. Fewer than two weighted arms: no test (p None).
    """
    kept = [(n, w) for n, w in zip(exposures, weights, strict=True) if w > 0]
    zero_weight = sum(n for n, w in zip(exposures, weights, strict=True) if not w > 0)
    total = sum(n for n, _ in kept)
    weight_sum = sum(w for _, w in kept)
    if total == 0 or len(kept) < 2:
        return SampleRatio(None, False, zero_weight)
    observed = np.array([n for n, _ in kept], dtype=float)
    expected = np.array([total * w / weight_sum for _, w in kept])
    # Pearson's statistic and the chi-square survival function: scipy.stats.chisquare's
    # p-value, without its per-call overhead (the optimizer runs this per experiment).
    statistic = float((((observed - expected) ** 2) / expected).sum())
    p_value = float(special.chdtrc(len(kept) - 1, statistic))
    flagged = p_value < SRM_ALPHA and min(n for n, _ in kept) >= SRM_MIN_EXPOSURES
    return SampleRatio(p_value, flagged, zero_weight)


def floored_weights(chances: Sequence[float], floor: float) -> list[float]:
    """Scale weights to sum 1 with every arm at least ``floor`` (floor * k <= 1).

    Arms under the floor are pinned to it; the rest share what is left in proportion
    to their chances, repeated until no arm falls under the floor.
    """
    k = len(chances)
    if floor * k > 1:
        raise ValueError("floor too high for the number of arms")
    pinned: set[int] = set()
    weights = list(chances)
    while True:
        free = [i for i in range(k) if i not in pinned]
        free_total = sum(chances[i] for i in free)
        left = 1 - floor * len(pinned)
        for i in range(k):
            if i in pinned:
                weights[i] = floor
            else:
                weights[i] = left * (chances[i] / free_total if free_total else 1 / len(free))
        under = [i for i in free if weights[i] < floor]
        if not under:
            return weights
        pinned.update(under)


def holdout_lift(holdout: Arm, exposed: Arm) -> dict:
    """A cue's effect: exposed sessions against the held-out ones, every figure or None.

    ``relative_lift`` with its interval, p-value and always-valid (sequential) interval
    from :func:`compare` (None, p-values 1, while there is not enough data: e.g. the
    holdout never converted, or nobody converted in one group); the credible interval
    of the relative lift and the chance that the cue beats the holdout (beta-binomial,
    None while either group has no sessions). ``enough_data`` and ``reason`` say why
    figures are missing.
    """
    result = compare(holdout, exposed)
    lift = {
        "enough_data": result.enough_data,
        "reason": result.reason,
        "relative_lift": result.relative_lift,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_value": result.p_value,
        "sequential_low": result.sequential_low,
        "sequential_high": result.sequential_high,
        "sequential_p_value": result.sequential_p_value,
        "credible_low": None,
        "credible_high": None,
        "chance_to_beat_holdout": None,
    }
    if holdout.exposures and exposed.exposures:
        lift["credible_low"], lift["credible_high"] = relative_lift_credible_interval(holdout, exposed)
        lift["chance_to_beat_holdout"] = chance_to_beat(holdout, exposed)
    return lift
