from __future__ import annotations

from django.db import transaction

from journeys.config_cache import bump
from journeys.models import JourneyPathRule, Site
from journeys.selectors import PATH_RULES_NAMESPACE, SITES_NAMESPACE


@transaction.atomic
def site_create(*, name: str, domain: str) -> Site:
    """Create a site with a fresh public key."""
    site = Site.objects.create(name=name, domain=domain.strip().lower())
    bump(SITES_NAMESPACE)
    return site


def site_changed() -> None:
    """Call after editing sites outside :func:`site_create` (admin)."""
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
