"""The shop backend's stock feed: server to server, with the site's secret key.

Each call confirms the stock as of now (``offer_stock_set``), which keeps a low-stock
cue fresh for as long as the shop keeps confirming; the public key printed in the
shop's pages is refused here.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from core.serializers import StorableJSONParser, StrictSerializer
from journeys.authentication import HasSecretKey, SecretKeyAuthentication
from personalization.models import Offer
from personalization.services.scarcity.offers import StockReport, UnknownSkus, offers_stock_set

MAX_STOCK_REPORTS = 1000


class StockIn(StrictSerializer):
    stock_remaining = serializers.IntegerField(min_value=0, max_value=2_147_483_647, allow_null=True)
    restock_at = serializers.DateTimeField(required=False, allow_null=True)


class StockItemIn(StockIn):
    sku = serializers.CharField(max_length=64)


class StockBulkIn(StrictSerializer):
    offers = serializers.ListField(child=StockItemIn(), min_length=1, max_length=MAX_STOCK_REPORTS)

    def validate_offers(self, value):
        seen: set[str] = set()
        repeated = sorted({item["sku"] for item in value if item["sku"] in seen or seen.add(item["sku"])})
        if repeated:
            raise serializers.ValidationError(f"SKU listed more than once: {', '.join(repeated)}.")
        return value


STOCK_OUT = inline_serializer(
    "StockOut",
    {
        "sku": serializers.CharField(),
        "stock_remaining": serializers.IntegerField(allow_null=True),
        "restock_at": serializers.DateTimeField(allow_null=True),
        "stock_updated_at": serializers.DateTimeField(),
        "stock_confirmed_by": serializers.CharField(),
    },
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


class StockFeedApi(APIView):
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
        request=StockIn,
        responses={200: STOCK_OUT},
        description="Confirm one SKU's stock as of now (and its restock date, when sent; null clears it). "
        "Authorization: Bearer sk_... (the site's secret key). Stock is the shop's: conversions never change it.",
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
        request=StockBulkIn,
        responses={200: inline_serializer("StockBulkOut", {"offers": serializers.ListField(child=STOCK_OUT)})},
        description=f"Confirm up to {MAX_STOCK_REPORTS} SKUs' stock as of now, all or nothing. "
        "Authorization: Bearer sk_... (the site's secret key).",
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
