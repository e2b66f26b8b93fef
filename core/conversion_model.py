"""The conversion model's mathematics: feature encoding, logistic regression, AUC, Brier.

Plain Python and numpy, no Django: the training service
(:mod:`analytics.conversion_training`) feeds it rows, session start and stage updates
score with it, and the tests check it by hand.

What a row is
-------------
One scoring moment of a session, with what the server knows at that moment
(:func:`snapshot_features`): the start of the session, and each stage update. A
finished session gives one training row per such moment in an open stage (awareness,
consideration, decision) taken before it converted, every row labelled with the
session's outcome: did it convert (a conversion of a type in
``settings.CONVERSION_STAGE_TYPES``)? So the model learns exactly the question asked
at scoring time, "will this open session convert?", from the features available then.
Sessions in ``conversion`` or ``retention`` have converted; they keep the documented
priors (:mod:`journeys.intelligence`).

Features (PRODUCT.md section 3, plus two that the product already collects):

- categorical, one-hot: ``device``, ``source``, ``path``, ``stage``, ``persona``
  (the persona type: its confidence alone says nothing without it), ``weekday``
  (0 = Monday, of the session start). Device, path, stage and weekday have fixed
  vocabularies; source and persona keep the levels seen in at least
  :data:`MIN_LEVEL_ROWS` training rows, every other value is ``__other__``.
- numeric, standardized with the training mean and scale, a missing value imputed to
  the mean with a ``<name>:missing`` indicator: ``engagement`` (the latest
  engagement score the client reported at a stage update; none at session start),
  ``purchase_intent`` (the start's intent signal: the only engagement the client
  reports before the first stage update), ``persona_confidence``.
- binary: ``returning``.
- cyclic: the hour of the session start (UTC) as ``hour_sin``, ``hour_cos``.

Stored as JSON (never a pickle): the encoding, the column names and one weight per
column plus the intercept; :func:`score` needs nothing else.

Fit: L2-regularized maximum likelihood, Newton's method (IRLS) with step halving.
The intercept is not penalized.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

FORMAT = 1
OTHER = "__other__"
OPEN_STAGES = ("awareness", "consideration", "decision")
DEVICES = ("desktop", "mobile", "tablet")
PATHS = (
    "desktop_research_deep",
    "mobile_tiktok_fast_track",
    "returning_visitor_personalized",
    "standard_conversion_funnel",
)
WEEKDAYS = ("0", "1", "2", "3", "4", "5", "6")
FIXED_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "device": DEVICES,
    "path": PATHS,
    "stage": OPEN_STAGES,
    "weekday": WEEKDAYS,
}
LEARNED_VOCABULARIES = ("source", "persona")
NUMERIC = ("engagement", "purchase_intent", "persona_confidence")
MIN_LEVEL_ROWS = 20  # a rarer source or persona is pooled into __other__
DEFAULT_L2 = 1.0
AUC_TOLERANCE = 0.01  # see Metrics.beats


def snapshot_features(
    *,
    device: str,
    source: str,
    path: str,
    stage: str,
    engagement: float | None,
    purchase_intent: float | None,
    persona: str,
    persona_confidence: float | None,
    returning: bool,
    started_at: datetime,
) -> dict:
    """The features of one scoring moment; training and scoring both build rows here."""
    started_at = started_at.astimezone(UTC)
    return {
        "device": device,
        "source": source,
        "path": path,
        "stage": stage,
        "persona": persona,
        "weekday": str(started_at.weekday()),
        "engagement": _number_or_none(engagement),
        "purchase_intent": _number_or_none(purchase_intent),
        "persona_confidence": _number_or_none(persona_confidence),
        "returning": bool(returning),
        "hour": started_at.hour,
    }


def _number_or_none(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


# --- encoding -----------------------------------------------------------------------


def encoding_fit(rows: Sequence[Mapping]) -> dict:
    """The encoding learned from training rows: vocabularies, numeric mean and scale.

    Lists, not mappings, hold the order of the columns: PostgreSQL's jsonb does not
    keep the order of an object's keys.
    """
    categorical = [{"name": name, "levels": [*levels, OTHER]} for name, levels in FIXED_VOCABULARIES.items()]
    for name in LEARNED_VOCABULARIES:
        counts = Counter(str(row[name]) for row in rows)
        levels = sorted(level for level, count in counts.items() if count >= MIN_LEVEL_ROWS)
        categorical.append({"name": name, "levels": [*levels, OTHER]})
    numeric = []
    for name in NUMERIC:
        values = np.array([row[name] for row in rows if row[name] is not None], dtype=float)
        mean = float(values.mean()) if values.size else 0.0
        std = float(values.std()) if values.size else 0.0
        numeric.append({"name": name, "mean": mean, "scale": std if std > 1e-12 else 1.0})
    return {"categorical": categorical, "numeric": numeric}


def columns(encoding: Mapping) -> list[str]:
    """Column names, in the order :func:`encode` fills them."""
    names = [f"{item['name']}={level}" for item in encoding["categorical"] for level in item["levels"]]
    for item in encoding["numeric"]:
        names += [item["name"], f"{item['name']}:missing"]
    return names + ["returning", "hour_sin", "hour_cos"]


def encode(encoding: Mapping, features: Mapping) -> list[float]:
    """One row as the model's column vector (without the intercept)."""
    vector: list[float] = []
    for item in encoding["categorical"]:
        value = str(features[item["name"]])
        if value not in item["levels"]:
            value = OTHER
        vector += [1.0 if level == value else 0.0 for level in item["levels"]]
    for item in encoding["numeric"]:
        value = features[item["name"]]
        if value is None:
            vector += [0.0, 1.0]
        else:
            vector += [(value - item["mean"]) / item["scale"], 0.0]
    angle = 2.0 * math.pi * features["hour"] / 24.0
    return vector + [1.0 if features["returning"] else 0.0, math.sin(angle), math.cos(angle)]


def encode_many(encoding: Mapping, rows: Iterable[Mapping]) -> np.ndarray:
    return np.array([encode(encoding, row) for row in rows], dtype=float).reshape(-1, len(columns(encoding)))


# --- fit and score ------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # exact logistic, no overflow


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float = DEFAULT_L2, max_iterations: int = 100, tolerance: float = 1e-10
) -> tuple[float, np.ndarray]:
    """L2-regularized logistic regression by Newton's method; returns (intercept, weights).

    Minimizes ``sum(log-loss) + l2 / 2 * |weights|^2`` (intercept unpenalized). Each
    Newton step is solved by least squares, so ``l2 = 0`` with collinear columns still
    converges (to the minimum-norm solution; its predictions are the maximum
    likelihood ones). Halves a step that does not lower the objective. Deterministic.
    """
    design = np.hstack([np.ones((x.shape[0], 1)), x])
    penalty = np.full(design.shape[1], float(l2))
    penalty[0] = 0.0
    beta = np.zeros(design.shape[1])

    def objective(b: np.ndarray) -> float:
        z = design @ b
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * b * b))

    current = objective(beta)
    for _ in range(max_iterations):
        p = _sigmoid(design @ beta)
        gradient = design.T @ (p - y) + penalty * beta
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        scale = 1.0
        while scale >= 1e-6:
            candidate = beta - scale * step
            value = objective(candidate)
            if value <= current:
                break
            scale /= 2.0
        else:
            break  # no step lowers the objective: the optimum, to machine precision
        beta, current = candidate, value
        if np.max(np.abs(scale * step)) < tolerance:
            break
    return float(beta[0]), beta[1:]


def train(rows: Sequence[Mapping], labels: Sequence[int], *, l2: float = DEFAULT_L2) -> dict:
    """Fit a model to rows of :func:`snapshot_features` and 0/1 labels; returns the coefficients JSON."""
    encoding = encoding_fit(rows)
    x = encode_many(encoding, rows)
    intercept, weights = fit_logistic(x, np.asarray(labels, dtype=float), l2=l2)
    return {
        "format": FORMAT,
        "encoding": encoding,
        "columns": columns(encoding),
        "intercept": intercept,
        "weights": [float(w) for w in weights],
        "l2": l2,
    }


def score(coefficients: Mapping, features: Mapping) -> float:
    """The model's conversion probability for one row of :func:`snapshot_features`."""
    vector = encode(coefficients["encoding"], features)
    z = coefficients["intercept"] + math.fsum(w * v for w, v in zip(coefficients["weights"], vector, strict=True))
    return 0.5 * (1.0 + math.tanh(0.5 * z))


# --- metrics ------------------------------------------------------------------------


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    ranks = np.empty(len(values), dtype=float)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and ordered[end + 1] == ordered[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def auc(y: Sequence[int], p: Sequence[float]) -> float:
    """Area under the ROC curve: the chance that a random positive outranks a random
    negative, a tie counting one half (the Mann-Whitney U of the positives over n1 * n0).

    Raises ValueError unless both classes are present.
    """
    labels = np.asarray(y, dtype=bool)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs at least one positive and one negative")
    ranks = average_ranks(np.asarray(p, dtype=float))
    u = ranks[labels].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def brier(y: Sequence[int], p: Sequence[float]) -> float:
    """Mean squared difference between the probability and the 0/1 outcome."""
    labels = np.asarray(y, dtype=float)
    return float(np.mean((np.asarray(p, dtype=float) - labels) ** 2))


@dataclass(frozen=True)
class Metrics:
    auc: float
    brier: float

    def beats(self, other: Metrics) -> bool:
        """The activation rule: a strictly lower Brier score, and an AUC no more than
        :data:`AUC_TOLERANCE` below the other's.

        Brier is a proper score of the served probability (calibration and ranking
        together), and the probability is what the product serves and thresholds. The
        AUC guard refuses a model that is better calibrated but clearly ranks worse;
        its tolerance ignores differences that are noise on a few hundred held-out
        sessions. Equal scores (the same data again) do not replace the active model.
        """
        return self.brier < other.brier and self.auc >= other.auc - AUC_TOLERANCE


def metrics(y: Sequence[int], p: Sequence[float]) -> Metrics:
    return Metrics(auc=auc(y, p), brier=brier(y, p))
