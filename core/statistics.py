"""Experiment statistics: plain functions over counts, each formula stated where it lives.

Conventions: an arm is ``(exposures n, conversions x)``; the control is arm 0 where an
order matters. Rates are x / n. All results are floats (or None when undefined, e.g.
a rate over zero exposures).

Bayesian model: each arm's conversion rate has a Beta(1 + x, 1 + n - x) posterior
(uniform Beta(1, 1) prior, binomial likelihood).

- Chance to beat control: the exact closed form for two Beta posteriors with integer
  parameters (Evan Miller, "Formulas for Bayesian A/B testing"):
  P(B > A) = sum_{i=0}^{aB-1} exp(lbeta(aA+i, bA+bB) - log(bB+i) - lbeta(1+i, bB) - lbeta(aA, bA)).
- Chance to be best and expected loss: numerical integration on a grid of the
  posteriors' densities and distribution functions, P(best_i) = int f_i(t) prod_{j!=i} F_j(t) dt,
  E[max_j p_j] = int_0^1 (1 - prod_j F_j(t)) dt, expected loss of choosing i =
  E[max_j p_j] - E[p_i]. Thompson sampling allocates to arm i with probability
  exactly P(best_i), so bandit weights are these chances (with a floor per arm).
- Credible interval of the relative lift p_t / p_c - 1: log-normal approximation of
  the ratio of posteriors, log(p_t/p_c) ~ N(log(m_t/m_c), v_t/m_t^2 + v_c/m_c^2), with
  m, v the Beta posterior means and variances (GrowthBook's approach).

Frequentist:
- Two-proportion z test, pooled standard error, two-sided p-value.
- Confidence interval of the relative lift by the delta method:
  Var(p_t/p_c) = v_t/p_c^2 + p_t^2 v_c/p_c^4, with v = p(1-p)/n.
- Always-valid interval (asymptotic confidence sequence, Waudby-Smith et al. 2023, as
  GrowthBook uses it): with N = n_c + n_t, sigma^2 = N * Var(lift) and tuning N* = 5000,
  rho^2 = (-2 log(alpha) + log(-2 log(alpha) + 1)) / N*, the half-width is
  sqrt(sigma^2 (N rho^2 + 1) / (N^2 rho^2) * log((N rho^2 + 1) / alpha^2)).
  The always-valid p-value is the smallest alpha whose sequence excludes 0 (found by
  bisection), so it may be read at any time without inflating false positives.
- Sample-ratio mismatch: Pearson chi-square of observed exposures against the
  intended weights (scipy.stats.chisquare), flagged at p < 0.001 once every arm has
  at least 8 exposures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

SRM_ALPHA = 0.001
SRM_MIN_EXPOSURES = 8
SEQUENTIAL_TUNING = 5000
GRID_POINTS = 2000


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


def _grid(arms: Sequence[Arm]) -> np.ndarray:
    a = np.array([arm.alpha for arm in arms], dtype=float)
    b = np.array([arm.beta for arm in arms], dtype=float)
    low = float(special.betaincinv(a, b, 1e-7).min())
    high = float(special.betaincinv(a, b, 1 - 1e-7).max())
    return np.linspace(low, high, GRID_POINTS)


def _densities(arms: Sequence[Arm], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta pdf and cdf of every arm on the grid (arrays arms x points).

    The cdf is the running trapezoid integral of the pdf, normalized to end at 1: the
    grid spans every arm's 1e-7..1-1e-7 quantiles, so nothing measurable is cut off,
    and it is much cheaper than the incomplete beta function at every point.
    """
    a = np.array([[arm.alpha] for arm in arms], dtype=float)
    b = np.array([[arm.beta] for arm in arms], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pdf = (a - 1) * np.log(grid) + (b - 1) * np.log1p(-grid) - special.betaln(a, b)
    pdf = np.nan_to_num(np.exp(log_pdf))
    steps = (pdf[:, 1:] + pdf[:, :-1]) * (np.diff(grid) / 2)
    cdf = np.concatenate([np.zeros((len(arms), 1)), np.cumsum(steps, axis=1)], axis=1)
    cdf /= cdf[:, -1:]
    return pdf, cdf


def chance_to_be_best(arms: Sequence[Arm]) -> list[float]:
    """P(arm i has the highest rate), by integration on a grid; sums to 1."""
    if len(arms) == 1:
        return [1.0]
    grid = _grid(arms)
    pdf, cdf = _densities(arms, grid)
    chances = []
    for index in range(len(arms)):
        others = np.prod(np.delete(cdf, index, axis=0), axis=0)
        chances.append(float(np.trapezoid(pdf[index] * others, grid)))
    total = sum(chances)
    return [chance / total for chance in chances]


def expected_loss(arms: Sequence[Arm]) -> list[float]:
    """E[max_j p_j - p_i] for each arm i: what choosing it costs, in rate units."""
    grid = _grid(arms)
    cdf = np.prod(_densities(arms, grid)[1], axis=0)
    # E[max] = int_0^1 (1 - F_max); below the grid F_max is ~0, above it ~1.
    expected_max = float(grid[0] + np.trapezoid(1 - cdf, grid))
    return [max(0.0, expected_max - arm.posterior_mean) for arm in arms]


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def relative_lift_credible_interval(control: Arm, treatment: Arm, level: float = 0.95) -> tuple[float, float]:
    m_c, m_t = control.posterior_mean, treatment.posterior_mean
    sd = math.sqrt(treatment.posterior_var / m_t**2 + control.posterior_var / m_c**2)
    z = _z(1 - level)
    centre = math.log(m_t / m_c)
    return math.exp(centre - z * sd) - 1, math.exp(centre + z * sd) - 1


@dataclass(frozen=True)
class Frequentist:
    relative_lift: float
    p_value: float
    ci_low: float
    ci_high: float
    sequential_low: float
    sequential_high: float
    sequential_p_value: float


def _lift_variance(control: Arm, treatment: Arm) -> float:
    p_c, p_t = control.rate, treatment.rate
    v_c = p_c * (1 - p_c) / control.exposures
    v_t = p_t * (1 - p_t) / treatment.exposures
    return v_t / p_c**2 + p_t**2 * v_c / p_c**4


def two_proportion_p_value(control: Arm, treatment: Arm) -> float:
    n_c, n_t = control.exposures, treatment.exposures
    pooled = (control.conversions + treatment.conversions) / (n_c + n_t)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    if se == 0:
        return 1.0
    z = (treatment.rate - control.rate) / se
    return float(2 * stats.norm.sf(abs(z)))


def sequential_half_width(*, variance: float, total: int, alpha: float, tuning: int = SEQUENTIAL_TUNING) -> float:
    sigma2 = variance * total
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    return math.sqrt(sigma2 * (total * rho2 + 1) / (total**2 * rho2) * math.log((total * rho2 + 1) / alpha**2))


def frequentist(control: Arm, treatment: Arm, alpha: float = 0.05) -> Frequentist | None:
    """Relative lift with fixed-horizon and always-valid intervals; None when undefined."""
    if not control.exposures or not treatment.exposures or not control.conversions:
        return None
    lift = treatment.rate / control.rate - 1
    variance = _lift_variance(control, treatment)
    sd = math.sqrt(variance)
    z = _z(alpha)
    total = control.exposures + treatment.exposures
    half = sequential_half_width(variance=variance, total=total, alpha=alpha) if variance else 0.0
    return Frequentist(
        relative_lift=lift,
        p_value=two_proportion_p_value(control, treatment),
        ci_low=lift - z * sd,
        ci_high=lift + z * sd,
        sequential_low=lift - half,
        sequential_high=lift + half,
        sequential_p_value=_sequential_p_value(lift, variance, total),
    )


def _sequential_p_value(lift: float, variance: float, total: int) -> float:
    """Smallest alpha at which the confidence sequence excludes zero (1.0 if none)."""
    if variance == 0:
        return 0.0 if lift else 1.0

    def excludes(alpha: float) -> bool:
        return sequential_half_width(variance=variance, total=total, alpha=alpha) < abs(lift)

    if not excludes(1 - 1e-9):
        return 1.0
    low, high = 1e-12, 1 - 1e-9
    if excludes(low):
        return low
    for _ in range(60):
        mid = math.sqrt(low * high)
        if excludes(mid):
            high = mid
        else:
            low = mid
    return high


@dataclass(frozen=True)
class SampleRatio:
    p_value: float | None
    flagged: bool


def sample_ratio_mismatch(exposures: Sequence[int], weights: Sequence[float]) -> SampleRatio:
    """Chi-square goodness of fit of exposures to the intended weights."""
    total = sum(exposures)
    weight_sum = sum(weights)
    if total == 0 or weight_sum <= 0 or len(exposures) < 2:
        return SampleRatio(None, False)
    expected = np.array([total * weight / weight_sum for weight in weights])
    # Pearson's statistic and the chi-square survival function: scipy.stats.chisquare's
    # p-value, without its per-call overhead (the optimizer runs this per experiment).
    statistic = float((((np.asarray(exposures) - expected) ** 2) / expected).sum())
    p_value = float(special.chdtrc(len(exposures) - 1, statistic))
    flagged = p_value < SRM_ALPHA and min(exposures) >= SRM_MIN_EXPOSURES
    return SampleRatio(p_value, flagged)


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

    ``relative_lift`` with its delta-method interval, p-value and always-valid
    (sequential) interval (:func:`frequentist`); the credible interval of the relative
    lift and the chance that the cue beats the holdout (beta-binomial). None where an
    arm has no sessions (or the holdout never converted, for the frequentist figures).
    """
    lift = {
        "relative_lift": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "sequential_low": None,
        "sequential_high": None,
        "credible_low": None,
        "credible_high": None,
        "chance_to_beat_holdout": None,
    }
    if not holdout.exposures or not exposed.exposures:
        return lift
    lift["credible_low"], lift["credible_high"] = relative_lift_credible_interval(holdout, exposed)
    lift["chance_to_beat_holdout"] = chance_to_beat(holdout, exposed)
    result = frequentist(holdout, exposed)
    if result is not None:
        lift.update(
            relative_lift=result.relative_lift,
            ci_low=result.ci_low,
            ci_high=result.ci_high,
            p_value=result.p_value,
            sequential_low=result.sequential_low,
            sequential_high=result.sequential_high,
        )
    return lift
