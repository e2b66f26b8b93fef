from django.urls import path

from personalization.api import DecideApi
from personalization.stock_api import OffersStockApi, OfferStockApi

urlpatterns = [
    path("decide", DecideApi.as_view(), name="decide"),
    path("offers/stock", OffersStockApi.as_view(), name="offers-stock"),
    path("offers/<str:sku>/stock", OfferStockApi.as_view(), name="offer-stock"),
]
