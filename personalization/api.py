"""``POST /api/v1/decide``: thin view over the decision engine."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from core.serializers import StrictSerializer
from journeys.api import SITE_KEY_PARAMETERS, SiteApi
from personalization.decisions import UnknownSlots, decide
from personalization.selectors import decision_session_for


class DecideIn(StrictSerializer):
    session_id = serializers.CharField(max_length=100)
    slots = serializers.ListField(child=serializers.SlugField(max_length=50), min_length=1, max_length=50)
    context = serializers.DictField(required=False, default=dict)


@extend_schema(parameters=SITE_KEY_PARAMETERS, request=DecideIn, responses={200: dict})
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
