"""Rate limits of the browser endpoints: their key is public (every shop page prints it).

Two limits, each ``RATE_LIMIT_*_REQUESTS`` requests per ``RATE_LIMIT_WINDOW_SECONDS``,
counted per request whatever it carries (:mod:`core.rate_limits`):

- per client address and site (``address``): what one machine, or one NAT, may send to
  one shop; a flood from one address stops here;
- per site (``site``): everything sent with the site's key, from any number of addresses;
  it shields the engine and the other sites from one key's traffic.

Over a limit the call is refused with 429, ``Retry-After`` (seconds until the window
turns) and the code ``rate_limited_address`` or ``rate_limited_site``; nothing the call
sent is read or written. CORS preflights are answered before this and never count.

An address over its limit is a *flood* for ``RATE_LIMIT_FLOOD_SECONDS`` (an hour): its
sessions of that hour are marked automated (``flood``), and so are those it starts in
the hour after, so what got through before the limit held leaves the statistics with
the rest (``journeys.selectors.human_sessions``). A NAT whose people together go over
the limit loses them from the statistics for that hour: fewer data, never false data.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from rest_framework import exceptions

from core.rate_limits import Exceeded, Limit, counter
from journeys.clients import address_hash
from journeys.services.sessions import sessions_mark_flood

logger = logging.getLogger(__name__)


class RateLimited(exceptions.Throttled):
    def __init__(self, exceeded: Exceeded) -> None:
        limit = exceeded.limit
        whose = "this client address" if limit.name == "address" else "this site"
        super().__init__(
            wait=exceeded.retry_after,
            detail=f"Too many requests from {whose}: the limit is {limit.requests} per {limit.window} seconds.",
            code=f"rate_limited_{limit.name}",
        )


def browser_limits(*, site_id: int, address: str) -> list[Limit]:
    """The limits one browser call counts against, the narrower first."""
    window = settings.RATE_LIMIT_WINDOW_SECONDS
    limits = [Limit("site", f"site:{site_id}", settings.RATE_LIMIT_SITE_REQUESTS, window)]
    if address:
        bucket = f"address:{site_id}:{address_hash(address)[:32]}"
        limits.insert(
            0,
            Limit(
                "address",
                bucket,
                settings.RATE_LIMIT_ADDRESS_REQUESTS,
                window,
                flag_seconds=settings.RATE_LIMIT_FLOOD_SECONDS,
            ),
        )
    return limits


def browser_call_admit(*, site_id: int, address: str) -> bool:
    """Count one browser call: :class:`RateLimited` when it is over a limit; else whether
    its address is a flood (it went over its limit within ``RATE_LIMIT_FLOOD_SECONDS``).

    When an address first goes over its limit, its sessions of the last
    ``RATE_LIMIT_FLOOD_SECONDS`` are marked automated (``flood``) at once: they were the
    flood's beginning.
    """
    hit = counter.hit(browser_limits(site_id=site_id, address=address), redis_url=settings.RATE_LIMIT_REDIS_URL)
    exceeded = hit.exceeded
    if exceeded is None:
        return hit.flagged
    if exceeded.first:
        logger.warning(
            "Site %s: %s rate limit reached (%s requests per %s s)",
            site_id,
            exceeded.limit.name,
            exceeded.limit.requests,
            exceeded.limit.window,
        )
        if exceeded.limit.name == "address":
            _flood_mark(site_id, address)
    raise RateLimited(exceeded)


def _flood_mark(site_id: int, address: str) -> None:
    since = timezone.now() - timedelta(seconds=settings.RATE_LIMIT_FLOOD_SECONDS)
    try:
        sessions_mark_flood(site_id=site_id, client_hash=address_hash(address), since=since)
    except DatabaseError:  # the refusal stands; the next window's first refusal marks them
        logger.exception("Site %s: the flood's sessions could not be marked", site_id)
