"""The live monitor's websocket (``/ws/monitor/``): authenticate, join a stream's group, forward.

Staff only, by the session cookie (``AuthMiddlewareStack`` behind
``AllowedHostsOriginValidator``, see ``config/asgi.py``). The socket is accepted and then
closed with a code the page can read (a close before the handshake would reach the
browser as a bare HTTP 403):

- :data:`CLOSE_NOT_AUTHENTICATED` (4401): no logged-in user;
- :data:`CLOSE_NOT_STAFF` (4403): a user who is not active staff.

Protocol (JSON text frames):

- client: ``{"action": "subscribe", "site": 3}`` or ``{"action": "subscribe", "site": "all"}``;
  subscribing again switches the stream;
- server: ``{"type": "subscribed", "stream": "site:3", "epoch": "...", "seq": 41}`` (the
  stream's head), then the stream's ``event`` and ``counters`` messages as
  :mod:`analytics.monitor` describes them, forwarded as they were encoded by the publisher;
- server: ``{"type": "error", "code": "...", "detail": "..."}`` for a bad request (the
  socket stays open).
"""

from __future__ import annotations

import json
import time

import redis.asyncio
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from analytics import monitor
from journeys.models import Site

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_NOT_STAFF = 4403
# The channel layer forgets group members after a day (``group_expiry``); a monitor
# left open longer re-joins its group well before that.
REJOIN_SECONDS = 3600


def _site_exists(site_id: int) -> bool:
    return Site.objects.filter(pk=site_id).exists()


class MonitorConsumer(AsyncWebsocketConsumer):
    group: str | None = None
    joined = 0.0
    staff = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
        elif not (user.is_active and user.is_staff):
            await self.close(code=CLOSE_NOT_STAFF)
        else:
            self.staff = True

    async def disconnect(self, code) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if not self.staff:
            return
        try:
            request = json.loads(text_data or "")
        except ValueError:
            return await self._error("bad_json", "Send JSON text frames.")
        if not isinstance(request, dict) or request.get("action") != "subscribe":
            return await self._error("bad_action", 'The only action is "subscribe".')
        site = request.get("site")
        if site == monitor.ALL:
            site_id = None
        elif (isinstance(site, int) and not isinstance(site, bool)) or (isinstance(site, str) and site.isdigit()):
            site_id = int(site)
            if not await database_sync_to_async(_site_exists)(site_id):
                return await self._error("unknown_site", f"No site {site_id}.")
        else:
            return await self._error("bad_site", 'Name a site id or "all".')
        stream = monitor.stream_of(site_id)
        group = monitor.group_name(stream)
        if group != self.group:
            if self.group:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_add(group, self.channel_name)
            self.group, self.joined = group, time.monotonic()
        connection = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        try:
            epoch, seq = await monitor.stream_head_async(connection, stream)
        finally:
            await connection.aclose()
        await self.send(text_data=json.dumps({"type": "subscribed", "stream": stream, "epoch": epoch, "seq": seq}))

    async def monitor_batch(self, event: dict) -> None:
        """Events of one stream, encoded by the publisher: one text frame each, in order."""
        for text in event["texts"]:
            await self.send(text_data=text)
        if self.group and time.monotonic() - self.joined > REJOIN_SECONDS:
            await self.channel_layer.group_add(self.group, self.channel_name)
            self.joined = time.monotonic()

    async def _error(self, code: str, detail: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": code, "detail": detail}))
