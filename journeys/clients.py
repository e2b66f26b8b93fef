"""Who is calling a browser endpoint: the client's address, and what is kept of it.

The address is ``REMOTE_ADDR``, or, behind ``RATE_LIMIT_TRUSTED_PROXIES`` proxies that
each append the address they saw to ``X-Forwarded-For``, the first hop that none of them
is: the N-th entry from the right. Entries further left were written by the client and
prove nothing. An IPv6 client counts by its /64 (one subscriber's prefix: a client
could otherwise take a fresh address for every request). Nothing stores the address:
rate-limit counters and sessions keep only :func:`address_hash`, a keyed hash.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings

from core.hashing import keyed_hash


def client_address(request) -> str:
    """The calling client's address as a network key (:func:`network_key`); ``""`` if unknown."""
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = settings.RATE_LIMIT_TRUSTED_PROXIES
    if trusted > 0:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        hops.append(remote)
        # hops[-1] is the nearest proxy; hops[-1 - trusted] the first hop no trusted proxy is.
        remote = hops[max(0, len(hops) - 1 - trusted)]
    return network_key(remote)


def network_key(address: str) -> str:
    """``"203.0.113.9"`` as is, an IPv6 address as its /64 (``"2001:db8:1:2::/64"``); ``""`` if not an address."""
    address = address.strip()
    if address.startswith("["):  # [v6]:port
        address = address[1:].split("]")[0]
    elif address.count(":") == 1:  # v4:port
        address = address.split(":")[0]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def address_hash(address: str) -> str:
    """The keyed hash (``HASH_KEY``) kept of a client address; ``""`` for none."""
    return keyed_hash(address, purpose="client-address") if address else ""
