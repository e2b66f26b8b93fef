"""The ``decision`` block of session answers.

The journey domain knows layout hints and the next best action by itself; the full
decision engine lives in the personalization app, which depends on this one. It
registers itself in :mod:`core.hooks` at start-up (``PersonalizationConfig.ready``),
so the journey API can answer with a real decision without importing the app above it.
"""

from __future__ import annotations

from collections.abc import Sequence

from core import hooks
from journeys import intelligence
from journeys.models import JourneySession


def decision_for(session: JourneySession, slots: Sequence[str] | None = None) -> dict:
    engine = hooks.decision_engine()
    if engine is not None:
        return engine(session=session, slots=slots, strict=False)
    return {
        "session_id": session.session_id,
        "slots": {},
        "scarcity": [],
        "recommendations": [],
        "layout_hints": intelligence.layout_hints(device_type=session.device_type, stage=session.current_stage),
        "next_best_action": intelligence.next_best_action(
            intent=session.intent_signals,
            stage=session.current_stage,
            conversion_probability=session.conversion_probability,
        ),
    }
