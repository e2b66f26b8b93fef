"""Websocket routes. The live monitor consumer joins here when analytics adds it."""

websocket_urlpatterns: list = []
