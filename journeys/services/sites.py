from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.config_cache import bump
from core.hashing import secret_key_hash
from journeys.models import JourneyPathRule, Site
from journeys.selectors import PATH_RULES_NAMESPACE, SITES_NAMESPACE

SECRET_KEY_PREFIX = "sk_"


def origin_normalize(value: str) -> str:
    """``scheme://host[:port]`` in lower case, as a browser sends it in ``Origin``.

    Raises ``ValidationError`` for anything that is not an http(s) origin: a path, a
    query, credentials or a wildcard would never equal a browser's ``Origin`` header, so
    they are refused rather than silently never matching.
    """
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValidationError(f"'{value}' is not an origin.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"'{value}' is not an origin: it needs http:// or https:// and a host.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or "*" in text:
        raise ValidationError(f"'{value}' is not an origin: give scheme, host and port only, no path or wildcard.")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default_port else "")


def origins_normalize(values: list[str]) -> list[str]:
    """Each origin normalized, duplicates dropped, order kept; errors name the bad entry."""
    found: list[str] = []
    errors = []
    for value in values:
        try:
            origin = origin_normalize(value)
        except ValidationError as error:
            errors.extend(error.messages)
            continue
        if origin not in found:
            found.append(origin)
    if errors:
        raise ValidationError({"allowed_origins": errors})
    return found


@transaction.atomic
def site_create(*, name: str, domain: str, allowed_origins: list[str] | None = None) -> Site:
    """Create a site with a fresh public key; its pages may call from ``allowed_origins``
    (default: ``https://DOMAIN``). It has no secret key until :func:`site_secret_rotate`."""
    domain = domain.strip().lower()
    origins = origins_normalize(allowed_origins if allowed_origins else [f"https://{domain}"])
    site = Site.objects.create(name=name, domain=domain, allowed_origins=origins)
    bump(SITES_NAMESPACE)
    return site


@transaction.atomic
def site_origins_set(*, site: Site, allowed_origins: list[str]) -> Site:
    """Replace the origins whose pages may call the browser API; every process reloads them."""
    site.allowed_origins = origins_normalize(allowed_origins)
    site.save(update_fields=["allowed_origins"])
    bump(SITES_NAMESPACE)
    return site


@transaction.atomic
def site_secret_rotate(*, site: Site) -> str:
    """Give the site a new secret key and return it: the only time it is ever shown.

    The previous key stops working when this commits. Only its hash is stored.
    """
    secret_key = SECRET_KEY_PREFIX + secrets.token_urlsafe(32)
    site.secret_key_hash = secret_key_hash(secret_key)
    site.secret_key_hint = secret_key[:7] + "…"
    site.secret_key_rotated_at = timezone.now()
    site.save(update_fields=["secret_key_hash", "secret_key_hint", "secret_key_rotated_at"])
    return secret_key


def site_changed() -> None:
    """Call after editing sites outside these services (admin)."""
    bump(SITES_NAMESPACE)


def path_rules_changed() -> None:
    """Call after editing journey-path rules, so every process reloads them."""
    bump(PATH_RULES_NAMESPACE)


@transaction.atomic
def path_rule_save(*, rule: JourneyPathRule) -> JourneyPathRule:
    rule.full_clean()
    rule.save()
    path_rules_changed()
    return rule
