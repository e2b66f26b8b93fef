"""Websocket routes."""

from django.urls import path

from analytics.consumers import MonitorConsumer

websocket_urlpatterns: list = [
    path("ws/monitor/", MonitorConsumer.as_asgi()),
]
