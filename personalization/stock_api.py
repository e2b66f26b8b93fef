"""The shop backend's stock feed: server to server, with the site's secret key.

Each call confirms the stock as of now (``offer_stock_set``), which keeps a low-stock
cue fresh for as long as the shop keeps confirming; the public key printed in the
shop's pages is refused here.
"""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from core.serializers import INT32_MAX, ClientDateTimeField, ClientIdField, StorableJSONParser, StrictSerializer
from journeys import api_schema as doc
from journeys.api import ApiView
from journeys.authentication import HasSecretKey, SecretKeyAuthentication
from personalization.models import SKU_MAX_LENGTH, Offer
from personalization.services.scarcity.offers import StockReport, UnknownSkus, offers_stock_set

MAX_STOCK_REPORTS = 1000
# A restock date is meant to be ahead, further than an event's timestamp may be.
RESTOCK_AT_AHEAD = timedelta(days=5 * 365)


class StockIn(StrictSerializer):
    """One SKU's stock as of now."""

    stock_remaining = serializers.IntegerField(min_value=0, max_value=INT32_MAX, allow_null=True)
    restock_at = ClientDateTimeField(
        future=RESTOCK_AT_AHEAD,
        required=False,
        allow_null=True,
        help_text="When stock comes back; changed only when sent, null clears it. From the timestamp window's past "
        "(`CLIENT_TIMESTAMP_PAST_DAYS`) to 5 years ahead.",
    )


class StockItemIn(StockIn):
    """One SKU's stock as of now, in a bulk report."""

    sku = ClientIdField(max_length=SKU_MAX_LENGTH)


class StockBulkIn(StrictSerializer):
    """Stock of up to 1,000 SKUs, each listed once."""

    offers = serializers.ListField(child=StockItemIn(), min_length=1, max_length=MAX_STOCK_REPORTS)

    def validate_offers(self, value):
        seen: set[str] = set()
        repeated = sorted({item["sku"] for item in value if item["sku"] in seen or seen.add(item["sku"])})
        if repeated:
            raise serializers.ValidationError(f"SKU listed more than once: {', '.join(repeated)}.")
        return value


# Schema only: ``stock_out`` builds the answer.
class StockOut(serializers.Serializer):
    """An offer's stock as the engine now holds it."""

    sku = serializers.CharField()
    stock_remaining = serializers.IntegerField(allow_null=True, help_text="null: the shop does not track it.")
    restock_at = serializers.DateTimeField(allow_null=True)
    stock_updated_at = serializers.DateTimeField(help_text="When the stock was last confirmed: now.")
    stock_confirmed_by = serializers.CharField(help_text="Who confirmed it, e.g. `stock feed (sk_...abcd)`.")


class StockBulkOut(serializers.Serializer):
    offers = StockOut(many=True)


STOCK_DESCRIPTION = (
    "\n\nServer to server: `Authorization: Bearer sk_...`, the site's secret key. A public key is refused "
    "with 403 `secret_key_required` (it is printed in every page of the shop). Never answers cross-origin. "
    "Idempotent: a repeat confirms the same stock again. The shop's inventory is the source of truth: "
    "conversions never change stock; the next confirmation does."
)
STOCK_ERRORS = {
    401: doc.unauthorized("no secret key (`not_authenticated`), or an unknown one (`invalid_secret_key`)"),
    403: doc.forbidden(("secret_key_required", "a public key was sent instead of the secret key")),
    413: doc.BODY_TOO_LARGE,
    415: doc.UNSUPPORTED_MEDIA_TYPE,
}
STOCK_EXAMPLE = {
    "sku": "A1",
    "stock_remaining": 3,
    "restock_at": None,
    "stock_updated_at": "2026-11-21T10:00:00Z",
    "stock_confirmed_by": "stock feed (sk_...9f2c)",
}
SECRET_KEY_REQUIRED_EXAMPLE = doc.error_example(
    403,
    "secret_key_required",
    "This endpoint takes the site's secret key (Authorization: Bearer sk_...), never its public key.",
)


def stock_out(offer: Offer) -> dict:
    return {
        "sku": offer.sku,
        "stock_remaining": offer.stock_remaining,
        "restock_at": offer.restock_at.isoformat() if offer.restock_at else None,
        "stock_updated_at": offer.stock_updated_at.isoformat(),
        "stock_confirmed_by": offer.stock_confirmed_by,
    }


def _report(sku: str, data: dict) -> StockReport:
    if "restock_at" in data:
        return StockReport(sku=sku, stock_remaining=data["stock_remaining"], restock_at=data["restock_at"])
    return StockReport(sku=sku, stock_remaining=data["stock_remaining"])


class StockFeedApi(ApiView):
    authentication_classes = [SecretKeyAuthentication]
    permission_classes = [HasSecretKey]
    parser_classes = [StorableJSONParser]

    @staticmethod
    def confirmed_by(request) -> str:
        return f"stock feed ({request.site.secret_key_hint})"

    @staticmethod
    def valid(serializer_class, data) -> dict:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class OfferStockApi(StockFeedApi):
    @extend_schema(
        operation_id="offer_stock_set",
        summary="Confirm one SKU's stock",
        tags=["stock feed"],
        request=StockIn,
        responses={
            200: StockOut,
            400: doc.BAD_REQUEST,
            **STOCK_ERRORS,
            404: doc.not_found("offer_not_found", "no offer with this SKU on the site."),
        },
        description="Confirms one SKU's stock as of now (and its restock date, when sent; null clears it), which "
        "keeps its low-stock cue fresh while it is true." + STOCK_DESCRIPTION,
        examples=[
            OpenApiExample("Three left", request_only=True, value={"stock_remaining": 3}),
            OpenApiExample("Confirmed", response_only=True, status_codes=["200"], value=STOCK_EXAMPLE),
            SECRET_KEY_REQUIRED_EXAMPLE,
        ],
    )
    def put(self, request, sku: str):
        data = self.valid(StockIn, request.data)
        try:
            (offer,) = offers_stock_set(
                site_id=request.site.pk, reports=[_report(sku, data)], confirmed_by=self.confirmed_by(request)
            )
        except UnknownSkus:
            raise NotFound(f"No offer with SKU '{sku}' on this site.", code="offer_not_found") from None
        return Response(stock_out(offer))


class OffersStockApi(StockFeedApi):
    @extend_schema(
        operation_id="offers_stock_set",
        summary="Confirm many SKUs' stock",
        tags=["stock feed"],
        request=StockBulkIn,
        responses={
            200: StockBulkOut,
            400: OpenApiResponse(
                doc.BadRequestOut,
                description="Field errors, nothing written; an unknown SKU is named under `offers`.",
            ),
            **STOCK_ERRORS,
        },
        description=f"Confirms up to {MAX_STOCK_REPORTS:,} SKUs' stock as of now, all or nothing: one unknown "
        "SKU refuses the whole report (400 naming it) and nothing is written. Each SKU at most once."
        + STOCK_DESCRIPTION,
        examples=[
            OpenApiExample(
                "Two SKUs",
                request_only=True,
                value={
                    "offers": [
                        {"sku": "A1", "stock_remaining": 3},
                        {"sku": "B2", "stock_remaining": 40, "restock_at": "2026-12-20T09:00:00Z"},
                    ]
                },
            ),
            OpenApiExample(
                "Confirmed",
                response_only=True,
                status_codes=["200"],
                value={
                    "offers": [
                        STOCK_EXAMPLE,
                        {**STOCK_EXAMPLE, "sku": "B2", "stock_remaining": 40, "restock_at": "2026-12-20T09:00:00Z"},
                    ]
                },
            ),
            OpenApiExample(
                "Unknown SKU",
                response_only=True,
                status_codes=["400"],
                value={"offers": ["No offer with SKU 'B2' on this site."]},
            ),
        ],
    )
    def put(self, request):
        data = self.valid(StockBulkIn, request.data)
        try:
            offers = offers_stock_set(
                site_id=request.site.pk,
                reports=[_report(item["sku"], item) for item in data["offers"]],
                confirmed_by=self.confirmed_by(request),
            )
        except UnknownSkus as error:
            raise serializers.ValidationError(
                {"offers": [f"No offer with SKU '{sku}' on this site." for sku in error.skus]}
            ) from None
        return Response({"offers": [stock_out(offer) for offer in offers]})
