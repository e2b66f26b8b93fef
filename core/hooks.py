"""How a lower layer tells the layers above it what happened, without naming them.

Imports run one way: ``core`` <- ``journeys`` <- ``personalization`` <- ``analytics``
(``make lint`` holds it). Where a lower layer needs something only an upper one has,
the upper one fills one of these slots in its ``AppConfig.ready``:

- **feed events** (:func:`feed`): something a person watching the live monitor should
  see happened (a session started, a stage changed, a conversion, cues shown, an
  optimizer proposal, an approval). ``analytics`` publishes them to the monitor.
- **probability provider** (:func:`probability_provider`): the conversion probability
  at session start and after a stage move. ``analytics`` serves its trained model;
  without it, the journey's documented priors.
- **decision engine** (:func:`decision_engine`): the ``decision`` block of session
  answers. ``personalization`` registers its engine.
- **attribution sources** (:func:`attribution_sources`): what a session saw before it
  converted (variants, offers, cues). ``personalization`` adds its own.
- **rollup marks** (:func:`rollup_mark_cte`): the SQL with which a hot statement marks
  its session's rollup key itself. ``analytics`` owns the rollups and registers it.
- **guardrail check** (:func:`guardrails_worse`): the names of an experiment arm's
  guardrail metrics that are significantly worse than the control's. The optimizer
  proposes no winner while the list is not empty; ``analytics`` computes guardrails and
  registers the check. Without it, no guardrail blocks anything.

Every slot has a default that keeps the lower layer working alone (its tests need no
upper app). Registering twice replaces (feed listeners are keyed by their name), so a
``ready`` that runs again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

FEED_KINDS = frozenset(
    {
        "session_started",
        "stage_changed",
        "conversion",
        "cues_shown",
        "proposals_created",
        "proposal_decided",
        "approval_decided",
    }
)

_feed: dict[str, dict[str, Callable[..., None]]] = {kind: {} for kind in FEED_KINDS}


def on_feed(kind: str, listener: Callable[..., None], *, name: str) -> None:
    """Call ``listener(**payload)`` for every ``feed(kind, **payload)``."""
    if kind not in FEED_KINDS:
        raise ValueError(f"unknown feed kind {kind!r}; known: {', '.join(sorted(FEED_KINDS))}")
    _feed[kind][name] = listener


def feed(kind: str, **payload: Any) -> None:
    """Tell the listeners of ``kind`` what happened (a no-op when nobody listens)."""
    for listener in _feed[kind].values():
        listener(**payload)


class ProbabilityProvider(Protocol):
    def session_start(
        self,
        *,
        site_id: int,
        device: str,
        source: str,
        path: str,
        persona: str,
        persona_confidence: float | None,
        returning: bool,
        intent: Mapping,
        started_at: datetime,
    ) -> float: ...

    def stage_update(self, *, session: Any, stage: str, engagement: Mapping) -> float: ...


_probability: ProbabilityProvider | None = None


def register_probability_provider(provider: ProbabilityProvider) -> None:
    global _probability
    _probability = provider


def probability_provider(default: ProbabilityProvider) -> ProbabilityProvider:
    """The registered provider, else ``default`` (the caller's own priors)."""
    return _probability or default


DecisionEngine = Callable[..., dict]
_decision_engine: DecisionEngine | None = None


def register_decision_engine(engine: DecisionEngine) -> None:
    global _decision_engine
    _decision_engine = engine


def decision_engine() -> DecisionEngine | None:
    return _decision_engine


AttributionSource = Callable[[Any, datetime], Mapping]
_attribution_sources: dict[str, AttributionSource] = {}


def add_attribution_source(source: AttributionSource, *, name: str) -> None:
    """``source(session, at) -> dict`` adds what the session saw before ``at`` to a conversion's attribution."""
    _attribution_sources[name] = source


def attribution_sources() -> list[AttributionSource]:
    return list(_attribution_sources.values())


# A common table expression named ``rollup_marked`` over the parameter ``%(session)s``;
# without a rollup owner it marks nothing.
NO_ROLLUP_MARK_CTE = "rollup_marked AS (SELECT %(session)s::bigint)"
_rollup_mark_cte: str | None = None


def register_rollup_mark_cte(cte: str) -> None:
    global _rollup_mark_cte
    _rollup_mark_cte = cte


def rollup_mark_cte() -> str:
    """The ``rollup_marked AS (...)`` CTE a statement writing one session's rows includes."""
    return _rollup_mark_cte or NO_ROLLUP_MARK_CTE


# ``check(*, experiment, variant_id) -> list[str]``: labels of the guardrail metrics
# (e.g. "bounce rate") on which the arm showing ``variant_id`` is significantly worse
# than the experiment's control; empty when none is.
GuardrailCheck = Callable[..., list[str]]
_guardrail_check: GuardrailCheck | None = None


def register_guardrail_check(check: GuardrailCheck | None) -> None:
    global _guardrail_check
    _guardrail_check = check


def guardrails_worse(*, experiment: Any, variant_id: int) -> list[str]:
    """The registered guardrail check's answer for one arm, else none (nothing registered)."""
    return list(_guardrail_check(experiment=experiment, variant_id=variant_id)) if _guardrail_check else []
