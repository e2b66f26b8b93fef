"""Keyed hashes for personal identifiers and content hashes for idempotency."""

from __future__ import annotations

import hashlib
import hmac
import re

import msgspec
from django.conf import settings

_encoder = msgspec.json.Encoder(order="sorted")


def keyed_hash(value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of ``value`` under the site-wide HASH_KEY, separated by purpose.

    Fingerprints and identifiers are stored only in this form: equal inputs give equal
    hashes (so linking works), and without the key the input cannot be recovered by
    trying common values.
    """
    key = f"{settings.HASH_KEY}:{purpose}".encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def normalize_identifier(identifier: str, method: str) -> str:
    value = identifier.strip()
    if method == "email":
        return value.lower()
    if method == "phone":
        return re.sub(r"[^\d+]", "", value)
    return value


def canonical_json(value: object) -> bytes:
    """JSON with sorted keys, so equal payloads give equal bytes."""
    return _encoder.encode(value)


def payload_hash(value: object) -> str:
    """128-bit content hash of a client payload, to tell a retry from a conflict."""
    return hashlib.blake2b(canonical_json(value), digest_size=16).hexdigest()


def secret_key_hash(secret_key: str) -> str:
    """What is stored of a site's secret key. The key is 32 random bytes, so a plain
    SHA-256 cannot be reversed by guessing, and it stays valid when HASH_KEY rotates."""
    return hashlib.sha256(secret_key.encode()).hexdigest()
