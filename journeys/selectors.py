"""Reads of the journey domain that more than one caller needs."""

from __future__ import annotations

import functools
from collections import defaultdict

from django.db import connection

from journeys.config_cache import VersionedCache
from journeys.intelligence import PathRuleSpec
from journeys.models import JourneyPathRule, JourneySession, Site, Visitor

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


@functools.cache
def _session_select() -> str:
    columns = [f's."{f.column}"' for f in JourneySession._meta.concrete_fields]
    columns += [f'v."{f.column}"' for f in Visitor._meta.concrete_fields]
    return (
        f"SELECT {', '.join(columns)} FROM {JourneySession._meta.db_table} s "
        f"JOIN {Visitor._meta.db_table} v ON v.id = s.visitor_id WHERE s.site_id = %s AND s.session_id = %s"
    )


def _from_row(model, values):
    """A model instance from its concrete columns, as the ORM would load it."""
    fields = model._meta.concrete_fields
    converted = []
    for field, value in zip(fields, values, strict=True):
        for converter in field.get_db_converters(connection):
            value = converter(value, field, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def session_for(site: Site, session_id: str) -> JourneySession | None:
    """The session with its visitor: what every site endpoint reads first.

    It is on the hot path of every decision and stage update, so it is one hand-written
    join (built once from the models' fields) instead of an ORM query compiled per call;
    the instances are the ones ``select_related("visitor")`` would give.
    """
    with connection.cursor() as cursor:
        cursor.execute(_session_select(), [site.pk, session_id])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(JourneySession._meta.concrete_fields)
    session = _from_row(JourneySession, row[:split])
    JourneySession.visitor.field.set_cached_value(session, _from_row(Visitor, row[split:]))
    return session


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
