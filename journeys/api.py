"""The journey API (PRODUCT.md section 4): thin views over the journey services."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from core.serializers import PlainTextJSONParser, StorableJSONParser
from journeys.authentication import (
    HasSiteKey,
    IsStaff,
    SiteKeyAuthentication,
    site_from_header,
)
from journeys.decisions import decision_for
from journeys.models import Visitor
from journeys.selectors import session_for
from journeys.serializers import ConsentSetIn, ConversionIn, IdentifyIn, SessionStartIn, StageUpdateIn
from journeys.services.conversions import conversion_record
from journeys.services.ingestion import BatchRejected, events_ingest, parse_batch
from journeys.services.privacy import ConsentRequired, consent_set, identify, visitor_erase, visitor_export
from journeys.services.sessions import SessionStart, journey_state, session_start, stage_advance

SITE_KEY = OpenApiParameter("X-Site-Key", str, OpenApiParameter.HEADER, required=True, description="Site public key")
# Browser endpoints: the key in the header, or in the query string with a text/plain body.
# Such a "simple" request needs no CORS preflight: one round trip less on a visitor's first
# page, and the only way a closing page's navigator.sendBeacon can call at all.
SITE_KEY_PARAMETERS = [
    OpenApiParameter(
        "X-Site-Key",
        str,
        OpenApiParameter.HEADER,
        required=False,
        description="Site public key (or the site_key query parameter)",
    ),
    OpenApiParameter(
        "site_key",
        str,
        OpenApiParameter.QUERY,
        required=False,
        description="Site public key, for requests that set no header (then send the JSON as text/plain)",
    ),
]


class SiteApi(APIView):
    """Base of browser endpoints: authenticated by the site's public key, scoped to that site.

    The key comes in ``X-Site-Key`` or as ``?site_key=``; the JSON body as
    ``application/json`` or ``text/plain`` (see ``SITE_KEY_PARAMETERS``).
    """

    authentication_classes = [SiteKeyAuthentication]
    permission_classes = [HasSiteKey]
    parser_classes = [StorableJSONParser, PlainTextJSONParser]

    def session_or_404(self, request, session_id: str, *, lock: bool = False, hot: bool = False):
        return self.found_or_404(session_for(request.site, session_id, lock=lock, hot=hot), session_id)

    @staticmethod
    def found_or_404(found, session_id: str):
        """``found`` (a session, or what a selector read with it) unless it is None: 404."""
        if found is None:
            raise NotFound(f"No session '{session_id}' for this site.", code="session_not_found")
        return found

    @staticmethod
    def valid(serializer_class, data) -> dict:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def decision_out(session, slots=None) -> dict:
    """The ``decision`` block, from the registered decision engine."""
    return decision_for(session, slots)


@extend_schema(parameters=SITE_KEY_PARAMETERS, request=SessionStartIn, responses={201: dict, 200: dict})
class SessionStartApi(SiteApi):
    def post(self, request):
        data = self.valid(SessionStartIn, request.data)
        persona = data["persona"] or {}
        consent = data["consent"] or {}
        result = session_start(
            site=request.site,
            data=SessionStart(
                session_id=data["session_id"],
                visitor_id=data["visitor_id"],
                device_type=data["device"]["type"],
                device_screen=data["device"]["screen"],
                device_fingerprint=data["device"]["fingerprint"],
                entry_point=data["entry_point"],
                utm=data["utm"],
                referrer=data["referrer"],
                persona_type=persona.get("type", ""),
                persona_confidence=persona.get("confidence"),
                intent_signals=data["intent_signals"],
                returning=data["returning"],
                consent_personalization=consent.get("personalization"),
                consent_cross_device=consent.get("cross_device"),
                metadata=data["metadata"],
                raw=request.data,
            ),
        )
        session = result.session
        body = {
            "session_id": session.session_id,
            "visitor_id": session.visitor.visitor_id,
            "created": result.created,
            "session_idle_seconds": settings.SESSION_IDLE_MINUTES * 60,
            "journey_state": journey_state(session),
            "decision": decision_out(session, data["slots"]),
        }
        if result.conflict:
            body["conflict"] = True
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


@extend_schema(parameters=SITE_KEY_PARAMETERS, request=StageUpdateIn, responses={200: dict})
class StageUpdateApi(SiteApi):
    def post(self, request, session_id: str):
        data = self.valid(StageUpdateIn, request.data)
        # The move and the claims of the cues it answers with commit together (one WAL
        # flush); the session is read and locked once, with its visitor.
        with transaction.atomic():
            session = stage_advance(
                session=self.session_or_404(request, session_id, lock=True, hot=True),
                locked=True,
                to=data["new_stage"],
                trigger=data["trigger_event"],
                engagement=data["engagement"],
                context=data["context"],
            )
            decision = decision_out(session, slots=[])  # no content shown: no exposures recorded
        return Response(
            {
                "session_id": session.session_id,
                "journey_state": journey_state(session),
                "recommendations": decision.get("recommendations", []),
                "scarcity_triggers": decision.get("scarcity", []),
                "layout_hints": decision["layout_hints"],
            }
        )


@extend_schema(
    parameters=SITE_KEY_PARAMETERS,
    request=inline_serializer("EventsBatchIn", {"events": serializers.ListField(child=serializers.DictField())}),
    responses={200: dict, 400: dict, 413: dict},
)
class EventsApi(SiteApi):
    """The ingestion hot path: the body is parsed with msgspec, not DRF's parsers, so it is
    the same JSON whether sent as ``application/json`` or as a beacon's ``text/plain``."""

    def post(self, request):
        try:
            events = parse_batch(_body_of(request))
            result = events_ingest(site=request.site, events=events)
        except BatchRejected as rejected:
            return Response(rejected.body, status=rejected.status)
        return Response(result.as_dict())


def _body_of(request) -> bytes:
    """The raw body. One over Django's upload limit is an oversized batch like any other (413)."""
    try:
        return request.body
    except RequestDataTooBig:
        raise BatchRejected(
            413, f"Batch body is over {settings.INGEST_MAX_BATCH_BYTES} bytes.", "batch_too_large"
        ) from None


@extend_schema(parameters=SITE_KEY_PARAMETERS, request=ConversionIn, responses={201: dict, 200: dict})
class ConversionApi(SiteApi):
    def post(self, request, session_id: str):
        data = self.valid(ConversionIn, request.data)
        session = self.session_or_404(request, session_id)
        result = conversion_record(
            session=session,
            event_id=data["event_id"],
            type=data["type"],
            value=data["value"],
            currency=data["currency"],
            product=data["product"],
            funnel_step=data["funnel_step"],
            raw={**request.data, "session_id": session.session_id},
        )
        conversion = result.conversion
        body = {
            "conversion_id": conversion.pk,
            "event_id": str(conversion.event_id),
            "duplicate": not result.created,
            "attribution": conversion.attribution,
        }
        if result.conflict:
            body["conflict"] = True
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


@extend_schema(parameters=SITE_KEY_PARAMETERS, request=IdentifyIn, responses={200: dict, 403: dict})
class IdentifyApi(SiteApi):
    def post(self, request):
        data = self.valid(IdentifyIn, request.data)
        session = self.session_or_404(request, data["session_id"])
        try:
            journey = identify(session=session, identifier=data["identifier"], method=data["method"])
        except ConsentRequired:
            raise PermissionDenied("The visitor has not given cross-device consent.", code="consent_required") from None
        return Response(
            {
                "unified_journey_id": str(journey.link.unified_journey_id),
                "sessions": journey.session_ids,
                "device_sequence": journey.link.device_sequence,
            }
        )


@extend_schema(parameters=SITE_KEY_PARAMETERS, request=ConsentSetIn, responses={200: dict})
class ConsentApi(SiteApi):
    def post(self, request):
        data = self.valid(ConsentSetIn, request.data)
        visitor = consent_set(
            site=request.site,
            visitor_id=data["visitor_id"],
            personalization=data["personalization"],
            cross_device=data["cross_device"],
        )
        return Response(
            {
                "visitor_id": visitor.visitor_id,
                "personalization": visitor.consent_personalization,
                "cross_device": visitor.consent_cross_device,
            }
        )


class StaffApi(APIView):
    """Base of staff endpoints: token or session auth of a staff user."""

    permission_classes = [IsStaff]

    def site_or_400(self, request):
        site = site_from_header(request) if request.META.get("HTTP_X_SITE_KEY") else None
        if site is None:
            raise serializers.ValidationError({"X-Site-Key": ["Name the site with the X-Site-Key header."]})
        return site


@extend_schema(parameters=[SITE_KEY], responses={200: dict, 204: OpenApiResponse(description="Erased")})
class VisitorApi(StaffApi):
    def visitor_or_404(self, request, visitor_id: str) -> Visitor:
        site = self.site_or_400(request)
        visitor = Visitor.objects.filter(site=site, visitor_id=visitor_id).first()
        if visitor is None:
            raise NotFound(f"No visitor '{visitor_id}' for this site.", code="visitor_not_found")
        return visitor

    def get(self, request, visitor_id: str):
        return Response(visitor_export(visitor=self.visitor_or_404(request, visitor_id)))

    def delete(self, request, visitor_id: str):
        visitor_erase(visitor=self.visitor_or_404(request, visitor_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
