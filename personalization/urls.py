from django.urls import path

from personalization.api import DecideApi

urlpatterns = [
    path("decide", DecideApi.as_view(), name="decide"),
]
