"""Reads of the journey domain that more than one caller needs."""

from __future__ import annotations

from collections import defaultdict

from journeys.config_cache import VersionedCache
from journeys.intelligence import PathRuleSpec
from journeys.models import JourneyPathRule, JourneySession, Site

PATH_RULES_NAMESPACE = "path-rules"
SITES_NAMESPACE = "sites"


def _load_path_rules() -> dict[int | None, tuple[PathRuleSpec, ...]]:
    by_site: dict[int | None, list[PathRuleSpec]] = defaultdict(list)
    for rule in JourneyPathRule.objects.filter(is_active=True).order_by("site_id", "priority"):
        by_site[rule.site_id].append(
            PathRuleSpec(
                priority=rule.priority,
                name=rule.name,
                device_types=tuple(rule.device_types),
                sources=tuple(source.lower() for source in rule.sources),
                returning=rule.returning,
                path=rule.path,
            )
        )
    return {site_id: tuple(rules) for site_id, rules in by_site.items()}


_path_rules = VersionedCache(PATH_RULES_NAMESPACE, _load_path_rules)


def path_rules_for(site_id: int) -> tuple[PathRuleSpec, ...]:
    """The site's own rules first, then the global ones, each by priority."""
    rules = _path_rules.get()
    return rules.get(site_id, ()) + rules.get(None, ())


def _load_sites() -> dict[str, Site]:
    return {site.public_key: site for site in Site.objects.filter(is_active=True)}


_sites = VersionedCache(SITES_NAMESPACE, _load_sites)


def site_for_key(public_key: str) -> Site | None:
    """The active site with this public key; an unknown key re-checks the version first."""
    site = _sites.get().get(public_key)
    if site is None:
        site = _sites.get(check_now=True).get(public_key)
    return site


def session_for(site: Site, session_id: str) -> JourneySession | None:
    return JourneySession.objects.filter(site=site, session_id=session_id).select_related("visitor").first()


def session_timeline(session: JourneySession) -> list[dict]:
    """Touchpoints, transitions and conversions of a session in time order."""
    items: list[dict] = []
    for transition in session.transitions.all():
        items.append(
            {
                "at": transition.created_at,
                "kind": "stage",
                "what": f"{transition.from_stage or 'start'} -> {transition.to_stage}",
                "detail": transition.trigger_event,
            }
        )
    for touchpoint in session.touchpoints.order_by("sequence"):
        items.append(
            {
                "at": touchpoint.client_timestamp,
                "kind": "touchpoint",
                "what": touchpoint.type,
                "detail": touchpoint.page_url,
            }
        )
    for conversion in session.conversions.all():
        items.append(
            {
                "at": conversion.converted_at,
                "kind": "conversion",
                "what": conversion.type,
                "detail": f"{conversion.value} {conversion.currency}",
            }
        )
    items.sort(key=lambda item: item["at"])
    return items
