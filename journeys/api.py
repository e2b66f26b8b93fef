"""The journey API (PRODUCT.md section 4): thin views over the journey services."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from core.serializers import (
    UNSTORABLE_TEXT,
    PlainTextJSONParser,
    StorableJSONParser,
    content_type_check,
    unstorable,
)
from journeys import api_schema as doc
from journeys.authentication import (
    HasPrivacyPermission,
    HasSiteKey,
    IsStaff,
    SiteKeyAuthentication,
    site_from_header,
)
from journeys.clients import client_address
from journeys.decisions import decision_for
from journeys.models import Visitor
from journeys.rate_limits import RateLimited, browser_call_admit
from journeys.selectors import session_for
from journeys.serializers import ConsentSetIn, ConversionIn, IdentifyIn, SessionStartIn, StageUpdateIn
from journeys.services.conversions import conversion_record
from journeys.services.ingestion import BatchRejected, events_ingest, parse_batch
from journeys.services.privacy import (
    ConsentRequired,
    VisitorErased,
    consent_set,
    identify,
    visitor_erase,
    visitor_export,
)
from journeys.services.sessions import SessionStart, journey_state, session_start, stage_advance


class ApiView(APIView):
    """Base of every API view: a path or query parameter PostgreSQL cannot store (a NUL
    character, a lone surrogate) is a 400 naming it, before any query reads it."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        refused = {name: [UNSTORABLE_TEXT] for name, value in kwargs.items() if unstorable(value)}
        for name, values in request.query_params.lists():
            if unstorable([name, *values]):
                refused[name] = [UNSTORABLE_TEXT]
        if refused:
            raise serializers.ValidationError(refused)


class SiteApi(ApiView):
    """Base of browser endpoints: authenticated by the site's public key, scoped to that site.

    The key comes in ``X-Site-Key`` or as ``?site_key=``; the JSON body as
    ``application/json`` or ``text/plain``. A body sent as text/plain needs no CORS
    preflight: one round trip less on a visitor's first page, and the only way a closing
    page's ``navigator.sendBeacon`` can call at all.
    """

    authentication_classes = [SiteKeyAuthentication]
    permission_classes = [HasSiteKey]
    parser_classes = [StorableJSONParser, PlainTextJSONParser]

    def check_throttles(self, request):
        """The rate limits of :mod:`journeys.rate_limits`, once the key and origin are accepted."""
        request.flooding = browser_call_admit(site_id=request.site.pk, address=client_address(request))

    def session_or_404(self, request, session_id: str, *, lock: bool = False, hot: bool = False):
        return self.found_or_404(session_for(request.site, session_id, lock=lock, hot=hot), session_id)

    @staticmethod
    def found_or_404(found, session_id: str):
        """``found`` (a session, or what a selector read with it) unless it is None: 404."""
        if found is None:
            raise _session_not_found(session_id)
        return found

    def handle_exception(self, exc):
        # A write whose visitor was erased while it waited wrote nothing: it is answered
        # as the same request is a moment later, for a session the site no longer has.
        if isinstance(exc, VisitorErased):
            exc = _session_not_found(exc.session_id)
        response = super().handle_exception(exc)
        if isinstance(exc, RateLimited):
            # Logged once per bucket and window (journeys.rate_limits), not once per refused call of a flood.
            response._has_been_logged = True
        return response

    @staticmethod
    def valid(serializer_class, data) -> dict:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def _session_not_found(session_id: str) -> NotFound:
    return NotFound(f"No session '{session_id}' for this site.", code="session_not_found")


def decision_out(session, slots=None) -> dict:
    """The ``decision`` block, from the registered decision engine."""
    return decision_for(session, slots)


@extend_schema_view(
    post=extend_schema(
        operation_id="session_start",
        summary="Start a journey session",
        tags=["journeys"],
        description="Starts a visitor's session and answers its journey state and a first decision (for the slots "
        "named in `slots`; all of the site's slots when left out). Call it once per page session.\n\n"
        "Idempotent on `session_id`: the same id again answers the stored session with 200 (`created: false`), never "
        "a duplicate; a repeat whose content differs is answered the same and logged as a conflict (`conflict: true`). "
        "Consent sent here is recorded for the visitor; without personalization consent the decision uses no "
        "behavioural data." + doc.BROWSER_DESCRIPTION,
        request=SessionStartIn,
        responses={
            201: OpenApiResponse(doc.SessionStartOut, description="Session started."),
            200: OpenApiResponse(doc.SessionStartOut, description="The session existed already: its current state."),
            **doc.browser_errors(not_found=None),
        },
        examples=[
            OpenApiExample(
                "Start a session",
                request_only=True,
                value={
                    "session_id": doc.EXAMPLE_SESSION,
                    "visitor_id": doc.EXAMPLE_VISITOR,
                    "device": {"type": "mobile", "screen": "375x812", "fingerprint": "fp-abc"},
                    "entry_point": {"source": "tiktok", "campaign": "viral_tech", "url": "https://shop.example/p/1"},
                    "utm": {"utm_source": "tiktok"},
                    "persona": {"type": "TechEarlyAdopter", "confidence": 0.85},
                    "intent_signals": {"purchase_intent": 0.4},
                    "returning": False,
                    "consent": {"personalization": True, "cross_device": True},
                    "slots": ["hero", "offer_banner"],
                },
            ),
            OpenApiExample(
                "Session started",
                response_only=True,
                status_codes=["201"],
                value={
                    "session_id": doc.EXAMPLE_SESSION,
                    "visitor_id": doc.EXAMPLE_VISITOR,
                    "created": True,
                    "session_idle_seconds": 1800,
                    "journey_state": doc.JOURNEY_STATE_EXAMPLE,
                    "decision": doc.DECISION_EXAMPLE,
                },
            ),
            doc.ORIGIN_NOT_ALLOWED_EXAMPLE,
        ],
    )
)
class SessionStartApi(SiteApi):
    def post(self, request):
        data = self.valid(SessionStartIn, request.data)
        persona = data["persona"] or {}
        consent = data["consent"] or {}
        start = SessionStart(
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
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            webdriver=data["device"]["webdriver"],
            flooding=request.flooding,
            client_address=client_address(request),
        )
        # The start and its first decision commit together: the visitor is held against
        # erasure in between (journeys.visitor_lock).
        with transaction.atomic():
            result = session_start(site=request.site, data=start)
            decision = decision_out(result.session, data["slots"])
        session = result.session
        body = {
            "session_id": session.session_id,
            "visitor_id": session.visitor.visitor_id,
            "created": result.created,
            "session_idle_seconds": settings.SESSION_IDLE_MINUTES * 60,
            "journey_state": journey_state(session),
            "decision": decision,
        }
        if result.conflict:
            body["conflict"] = True
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


@extend_schema_view(
    post=extend_schema(
        operation_id="stage_update",
        summary="Move a session to a journey stage",
        tags=["journeys"],
        description="Records that the session moved to `new_stage` (what triggered it, and how engaged the visitor "
        "was) and answers the new journey state with recommendations and the urgency cues that are true now. "
        "Shows no content, so it records no exposure. Moving to the stage the session is in records the engagement "
        "again; every call is stored as a transition." + doc.BROWSER_DESCRIPTION,
        request=StageUpdateIn,
        responses={200: doc.StageUpdateOut, **doc.browser_errors()},
        examples=[
            OpenApiExample(
                "Move to consideration",
                request_only=True,
                value={
                    "new_stage": "consideration",
                    "trigger_event": "product_gallery_viewed",
                    "engagement": {
                        "time_on_page": 45,
                        "scroll_depth": 0.8,
                        "interaction_count": 3,
                        "engagement_score": 0.7,
                    },
                },
            ),
            OpenApiExample(
                "Moved",
                response_only=True,
                status_codes=["200"],
                value={
                    "session_id": doc.EXAMPLE_SESSION,
                    "journey_state": {**doc.JOURNEY_STATE_EXAMPLE, "current_stage": "consideration"},
                    "recommendations": [],
                    "scarcity_triggers": [doc.CUE_EXAMPLE],
                    "layout_hints": {"device": "mobile", "stage": "consideration"},
                },
            ),
            doc.error_example(404, "session_not_found", "No session 's-404' for this site."),
        ],
    )
)
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


@extend_schema_view(
    post=extend_schema(
        operation_id="events_ingest",
        summary="Send a batch of touchpoints",
        tags=["journeys"],
        description="Stores a batch of touchpoints (page views, clicks, scrolls...) of the site's sessions. "
        "Each event carries a client `event_id` (a UUID made once per event): resend a batch as often as needed, "
        "an event already stored counts as a duplicate (or a conflict when its content differs) and is not stored "
        "twice.\n\n"
        "An invalid event does not refuse the batch: it is kept in quarantine and listed in `rejected` with its "
        "index and field errors; the others are stored. Fields outside the contract are kept in the event's "
        "metadata. An event is rejected with a timestamp more than a day ahead or 7 days back (settings "
        "`CLIENT_TIMESTAMP_FUTURE_HOURS`, `CLIENT_TIMESTAMP_PAST_DAYS`), a `session_id` with characters not usable "
        "in a URL, or a free-form field (`interaction_data`, `device_context`, a field outside the contract) over "
        "16 KB as JSON or nested too deep (a body nests at most 32 levels).\n\n"
        "Limits: 32 KB per event, 1,000 events and 1 MB per batch; over a limit the whole batch is refused with "
        "413 and nothing is written. 200 is sent only after the batch is committed." + doc.BROWSER_DESCRIPTION,
        request=doc.EventsBatchIn,
        responses={
            200: doc.EventsIngestOut,
            400: OpenApiResponse(
                doc.BatchBadRequestOut,
                description="The body is not an object with a non-empty `events` list (`invalid`, naming `field`), "
                "not UTF-8 or not JSON (`parse_error`, `field`: `body`), or nested too deep to read (`too_deep`, "
                "with the event's `index`); or a query parameter holds text that cannot be stored "
                '(`{"name": ["reason"]}`). Nothing written.',
            ),
            401: doc.SITE_KEY_UNAUTHORIZED,
            403: doc.forbidden(doc.ORIGIN_NOT_ALLOWED),
            429: doc.RATE_LIMITED,
            413: OpenApiResponse(
                doc.BatchErrorOut,
                description="Over a limit (`batch_too_large`, `too_many_events`, or `event_too_large` with the "
                "event's `index`). Nothing written.",
            ),
            415: doc.UNSUPPORTED_MEDIA_TYPE,
        },
        examples=[
            OpenApiExample(
                "Two page views",
                request_only=True,
                value={
                    "events": [
                        {
                            "event_id": "6f1c2a57-3f0e-4b8e-9b1a-2c7d9e4f5a10",
                            "session_id": doc.EXAMPLE_SESSION,
                            "type": "page_view",
                            "timestamp": "2026-01-02T10:00:00Z",
                            "page_url": "https://shop.example/p/1",
                            "engagement_score": 0.5,
                            "duration_seconds": 12,
                            "scroll_depth": 0.4,
                            "click_count": 1,
                        },
                        {
                            "event_id": "0b5e8d4c-7a2f-4c61-8e3d-95f1b2a6c7d8",
                            "session_id": doc.EXAMPLE_SESSION,
                            "type": "page_view",
                            "timestamp": "2026-01-02T10:00:30Z",
                            "page_url": "https://shop.example/p/2",
                            "scroll_depth": 1.5,
                        },
                    ]
                },
            ),
            OpenApiExample(
                "One stored, one rejected",
                response_only=True,
                status_codes=["200"],
                value={
                    "accepted": 1,
                    "duplicates": 0,
                    "conflicts": 0,
                    "rejected": [
                        {
                            "index": 1,
                            "event_id": "0b5e8d4c-7a2f-4c61-8e3d-95f1b2a6c7d8",
                            "errors": {"scroll_depth": ["Expected `float` <= 1.0"]},
                        }
                    ],
                },
            ),
            OpenApiExample(
                "Too many events",
                response_only=True,
                status_codes=["413"],
                value={"detail": "Batch has 1200 events; the limit is 1000.", "code": "too_many_events"},
            ),
        ],
    )
)
class EventsApi(SiteApi):
    """The ingestion hot path: the body is parsed with msgspec, not DRF's parsers, so it is
    the same JSON whether sent as ``application/json`` or as a beacon's ``text/plain``."""

    def post(self, request):
        content_type_check(request, self.get_parsers())
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


@extend_schema_view(
    post=extend_schema(
        operation_id="conversion_record",
        summary="Record a conversion",
        tags=["journeys"],
        description="Records a conversion of the session (a purchase, a sign-up...) and answers the attribution "
        "frozen with it: the variants, offers and urgency cues the session saw before. A purchase or booking moves "
        "the session to the `conversion` stage. A purchase naming a SKU does not change its stock.\n\n"
        "Idempotent on `event_id` (a UUID made once per conversion): a repeat answers the stored conversion with "
        "200 and `duplicate: true`; a repeat with other content is logged as a conflict (`conflict: true`)."
        + doc.BROWSER_DESCRIPTION,
        request=ConversionIn,
        responses={
            201: OpenApiResponse(doc.ConversionOut, description="Recorded."),
            200: OpenApiResponse(doc.ConversionOut, description="Recorded before (`duplicate: true`)."),
            **doc.browser_errors(),
        },
        examples=[
            OpenApiExample(
                "A purchase",
                request_only=True,
                value={
                    "event_id": "3d4c5b6a-7980-4a1b-8c2d-3e4f5a6b7c8d",
                    "type": "purchase",
                    "value": "49.90",
                    "currency": "EUR",
                    "product": {"sku": "A1"},
                    "funnel_step": "checkout",
                },
            ),
            OpenApiExample(
                "Recorded",
                response_only=True,
                status_codes=["201"],
                value={
                    "conversion_id": 42,
                    "event_id": "3d4c5b6a-7980-4a1b-8c2d-3e4f5a6b7c8d",
                    "duplicate": False,
                    "attribution": {
                        "journey_path": "mobile_tiktok_fast_track",
                        "source": "tiktok",
                        "campaign": "viral_tech",
                        "device_type": "mobile",
                        "persona": "TechEarlyAdopter",
                        "stages": ["consideration", "decision"],
                        "touchpoints": 7,
                        "variants": [
                            {
                                "variant": "offer-banner",
                                "version": 1,
                                "experiment": None,
                                "exposed_at": doc.EXAMPLE_TIME,
                            }
                        ],
                        "offers": [{"sku": "A1", "name": "Wireless earbuds"}],
                        "scarcity": [
                            {
                                "rule": "low-stock",
                                "trigger_type": "low_stock",
                                "text": "Only 3 left",
                                "rule_version": 1,
                                "times": 1,
                                "first_shown_at": doc.EXAMPLE_TIME,
                                "last_shown_at": doc.EXAMPLE_TIME,
                            }
                        ],
                    },
                },
            ),
        ],
    )
)
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


@extend_schema_view(
    post=extend_schema(
        operation_id="identify",
        summary="Link a session to a person across devices",
        tags=["privacy"],
        description="Links the session, and the visitor's other sessions, to one person known by `identifier` "
        "(an email address, a phone number or the shop's user id), and answers that person's unified journey. "
        "Only with the visitor's cross-device consent (else 403 `consent_required`, nothing written). The identifier "
        "is stored only as a keyed hash. Safe to repeat." + doc.BROWSER_DESCRIPTION,
        request=IdentifyIn,
        responses={200: doc.IdentifyOut, **doc.browser_errors(forbidden_codes=[doc.CONSENT_REQUIRED])},
        examples=[
            OpenApiExample(
                "Identify by email",
                request_only=True,
                value={"session_id": doc.EXAMPLE_SESSION, "identifier": "ann@example.com", "method": "email"},
            ),
            OpenApiExample(
                "Linked",
                response_only=True,
                status_codes=["200"],
                value={
                    "unified_journey_id": "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
                    "sessions": ["s-100", doc.EXAMPLE_SESSION],
                    "device_sequence": ["desktop", "mobile"],
                },
            ),
            doc.error_example(403, "consent_required", "The visitor has not given cross-device consent."),
        ],
    )
)
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


@extend_schema_view(
    post=extend_schema(
        operation_id="consent_set",
        summary="Set a visitor's consent",
        tags=["privacy"],
        description="Records the visitor's consent choices (a flag left out or null is left as it was) and answers "
        "the consent in force. Creates the visitor if it is new. Withdrawing cross-device consent unlinks the "
        "visitor's sessions from unified journeys and forgets the identifier. Idempotent." + doc.BROWSER_DESCRIPTION,
        request=ConsentSetIn,
        responses={200: doc.ConsentOut, **doc.browser_errors(not_found=None)},
        examples=[
            OpenApiExample(
                "Consent to both",
                request_only=True,
                value={"visitor_id": doc.EXAMPLE_VISITOR, "personalization": True, "cross_device": True},
            ),
            OpenApiExample(
                "Consent in force",
                response_only=True,
                status_codes=["200"],
                value={"visitor_id": doc.EXAMPLE_VISITOR, "personalization": True, "cross_device": True},
            ),
        ],
    )
)
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


class StaffApi(ApiView):
    """Base of staff endpoints: token or session auth of a staff user."""

    permission_classes = [IsStaff]

    def site_or_400(self, request):
        site = site_from_header(request) if request.META.get("HTTP_X_SITE_KEY") else None
        if site is None:
            raise serializers.ValidationError({"X-Site-Key": ["Name the site with the X-Site-Key header."]})
        return site


def _visitor_not_found(visitor_id: str) -> NotFound:
    return NotFound(f"No visitor '{visitor_id}' for this site.", code="visitor_not_found")


VISITOR_NOT_FOUND = doc.not_found("visitor_not_found", "no visitor with this `visitor_id` on the site.")
NO_SITE = 'The site is not named (`{"X-Site-Key": ["..."]}`).'


class VisitorApi(StaffApi):
    permission_classes = [IsStaff, HasPrivacyPermission]

    def visitor_or_404(self, request, visitor_id: str) -> Visitor:
        site = self.site_or_400(request)
        visitor = Visitor.objects.filter(site=site, visitor_id=visitor_id).first()
        if visitor is None:
            raise _visitor_not_found(visitor_id)
        return visitor

    @extend_schema(
        operation_id="visitor_export",
        summary="Export everything held about a visitor",
        tags=["privacy"],
        description="Staff with the `journeys.export_visitor` permission (the Privacy officers role, or a "
        "superuser), by `Authorization: Token ...` or a staff session. Answers everything the engine "
        "holds about one visitor of the site named by `X-Site-Key`: consent, persona history, sessions with their "
        "stage moves, touchpoints and conversions, quarantined payloads and idempotency conflicts that name them.",
        parameters=[doc.SITE_KEY],
        responses={
            200: doc.VisitorExportOut,
            **doc.staff_errors(not_found=VISITOR_NOT_FOUND, bad_request=NO_SITE, permission="journeys.export_visitor"),
        },
        examples=[
            OpenApiExample(
                "A visitor with one session",
                response_only=True,
                status_codes=["200"],
                value={
                    "visitor_id": doc.EXAMPLE_VISITOR,
                    "consent": {
                        "personalization": True,
                        "personalization_at": doc.EXAMPLE_TIME,
                        "cross_device": False,
                        "cross_device_at": None,
                    },
                    "persona": {"type": "TechEarlyAdopter", "confidence": 0.85},
                    "persona_history": [],
                    "scarcity_sensitivity": 0.5,
                    "has_cross_device_identity": False,
                    "first_seen_at": doc.EXAMPLE_TIME,
                    "last_seen_at": doc.EXAMPLE_TIME,
                    "sessions": [],
                    "quarantined_events": [],
                    "idempotency_conflicts": [],
                },
            ),
            doc.error_example(404, "visitor_not_found", "No visitor 'v-404' for this site."),
        ],
    )
    def get(self, request, visitor_id: str):
        exported = visitor_export(visitor=self.visitor_or_404(request, visitor_id))
        if exported is None:  # erased since it was looked up
            raise _visitor_not_found(visitor_id)
        return Response(exported)

    @extend_schema(
        operation_id="visitor_erase",
        summary="Erase everything held about a visitor",
        tags=["privacy"],
        description="Staff with the `journeys.erase_visitor` permission (the Privacy officers role, or a "
        "superuser). Deletes the visitor of the site named by `X-Site-Key` with everything that "
        "hangs off it (sessions, touchpoints, conversions, decisions' records, cues shown, quarantined payloads and "
        "conflict logs that name it); rollups keep only aggregates. Afterwards a GET answers 404. Not repeatable: a "
        "second call is a 404.\n\n"
        "It wins every race with the visitor's own traffic: it waits for the requests already writing for the "
        "visitor, and those that arrive meanwhile get what a request after the erasure gets (404 "
        "`session_not_found`, an event rejected for an unknown session; a session start or consent creates a new, "
        "empty visitor). With a session cookie, send the CSRF token.",
        parameters=[doc.SITE_KEY],
        responses={
            204: OpenApiResponse(description="Erased."),
            **doc.staff_errors(
                not_found=VISITOR_NOT_FOUND, bad_request=NO_SITE, unsafe=True, permission="journeys.erase_visitor"
            ),
        },
    )
    def delete(self, request, visitor_id: str):
        if not visitor_erase(visitor=self.visitor_or_404(request, visitor_id)):  # a concurrent call erased it
            raise _visitor_not_found(visitor_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
