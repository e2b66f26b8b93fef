"""``POST /api/v1/decide``: thin view over the decision engine."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.response import Response

from core.serializers import ClientIdField, FreeFormField, StrictSerializer
from journeys import api_schema as doc
from journeys.api import SiteApi
from personalization.decisions import UnknownSlots, decide
from personalization.selectors import decision_session_for


class DecideIn(StrictSerializer):
    """The slots to decide for one session."""

    session_id = ClientIdField()
    slots = serializers.ListField(
        child=serializers.SlugField(max_length=50),
        min_length=1,
        max_length=50,
        help_text="Slot keys as the page marks them (`data-journey-slot`); repeats are decided once.",
    )
    context = FreeFormField(required=False, default=dict, help_text="Free-form page context.")


@extend_schema_view(
    post=extend_schema(
        operation_id="decide",
        summary="Decide what each slot shows",
        tags=["decisions"],
        description="Answers, per requested slot, the content variant to show (or null: keep the page's default "
        "content), with the experiment and strategy that chose it, plus the urgency cues that are true now for this "
        "session, layout hints and the next best action. Records the exposures of what it answers, so call it when "
        "the content is about to be shown.\n\n"
        "Deciding again for the same session gives the same variants (assignments are sticky) and records no new "
        "exposure. An unknown slot key is a 400 naming it. Up to 50 slots per call." + doc.BROWSER_DESCRIPTION,
        request=DecideIn,
        responses={200: doc.DecisionOut, **doc.browser_errors()},
        examples=[
            OpenApiExample(
                "Two slots",
                request_only=True,
                value={"session_id": doc.EXAMPLE_SESSION, "slots": ["hero", "offer_banner"], "context": {}},
            ),
            OpenApiExample("Decided", response_only=True, status_codes=["200"], value=doc.DECISION_EXAMPLE),
            OpenApiExample(
                "Unknown slot",
                response_only=True,
                status_codes=["400"],
                value={"slots": ["Unknown slot: sidebar."]},
            ),
        ],
    )
)
class DecideApi(SiteApi):
    def post(self, request):
        data = self.valid(DecideIn, request.data)
        session, assigned = self.found_or_404(
            decision_session_for(request.site, data["session_id"]), data["session_id"]
        )
        try:
            return Response(decide(session=session, slots=data["slots"], context=data["context"], assigned=assigned))
        except UnknownSlots as error:
            raise serializers.ValidationError({"slots": [f"Unknown slot: {slot}." for slot in error.slots]}) from None
