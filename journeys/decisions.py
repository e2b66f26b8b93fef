"""The ``decision`` block of session answers until the decision engine takes over.

It holds what the journey domain knows by itself: layout hints and the next best
action. The personalization app replaces :func:`decision_for` with the full engine.
"""

from __future__ import annotations

from journeys import intelligence
from journeys.models import JourneySession


def decision_for(session: JourneySession) -> dict:
    return {
        "session_id": session.session_id,
        "slots": {},
        "scarcity": [],
        "layout_hints": intelligence.layout_hints(device_type=session.device_type, stage=session.current_stage),
        "next_best_action": intelligence.next_best_action(
            intent=session.intent_signals,
            stage=session.current_stage,
            conversion_probability=session.conversion_probability,
        ),
    }
