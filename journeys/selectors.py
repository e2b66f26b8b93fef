"""Reads of the journey domain that more than one caller needs."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet

from core.config_cache import VersionedCache
from core.db import prepared_cursor
from core.hashing import secret_key_hash
from journeys.intelligence import PathRuleSpec
from journeys.models import JourneyPathRule, JourneySession, Site, Visitor
from journeys.visitor_lock import held

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


@dataclass(frozen=True)
class ActiveSites:
    by_key: dict[str, Site]
    origins: frozenset[str]


def _load_sites() -> ActiveSites:
    sites = list(Site.objects.filter(is_active=True))
    return ActiveSites(
        by_key={site.public_key: site for site in sites},
        origins=frozenset(origin for site in sites for origin in site.allowed_origins),
    )


_sites = VersionedCache(SITES_NAMESPACE, _load_sites)


def site_for_key(public_key: str) -> Site | None:
    """The active site with this public key; an unknown key re-checks the version first."""
    site = _sites.get().by_key.get(public_key)
    if site is None:
        site = _sites.get(check_now=True).by_key.get(public_key)
    return site


def origin_allowed(origin: str, site: Site | None = None) -> bool:
    """Whether a page on ``origin`` may call the browser API of ``site``.

    Without a site (a CORS preflight, which carries no key): whether any active site
    allows it; the real call that follows is checked against its own site.
    """
    if site is not None:
        return origin in site.allowed_origins
    return origin in _sites.get().origins


def site_for_secret_key(secret_key: str) -> Site | None:
    """The active site whose secret key this is (server-to-server calls; not cached)."""
    return Site.objects.filter(secret_key_hash=secret_key_hash(secret_key), is_active=True).first()


# What the decision and stage paths read of a session and its visitor. The rest (the
# entry point, UTM, referrer and metadata documents, the idempotency hash...) is left
# deferred: it loads on first access, as with ``QuerySet.only``.
HOT_SESSION_FIELDS = (
    "id",
    "site",
    "visitor",
    "session_id",
    "persona_type",
    "persona_confidence",
    "device_type",
    "source",
    "returning",
    "started_at",
    "last_activity_at",
    "current_stage",
    "max_stage",
    "journey_path",
    "conversion_probability",
    "intent_signals",
    "engagement",
)
HOT_VISITOR_FIELDS = (
    "id",
    "site",
    "visitor_id",
    "consent_personalization",
    "consent_cross_device",
    "persona",
    "persona_confidence",
    "scarcity_sensitivity",
)


@dataclass(frozen=True)
class _Loader:
    """Builds instances of ``model`` from the values of ``fields``, as the ORM would."""

    model: type
    fields: tuple
    attnames: tuple[str, ...]
    converters: tuple  # (index, field, converters) for the fields that have any

    @classmethod
    @functools.cache
    def of(cls, model, names: tuple[str, ...] | None) -> _Loader:
        fields = tuple(f for f in model._meta.concrete_fields if names is None or f.name in names)
        converters = tuple(
            (index, field, tuple(field.get_db_converters(connection)))
            for index, field in enumerate(fields)
            if field.get_db_converters(connection)
        )
        return cls(model, fields, tuple(f.attname for f in fields), converters)

    def columns(self, alias: str) -> list[str]:
        return [f'{alias}."{field.column}"' for field in self.fields]

    def load(self, values):
        values = list(values)
        for index, field, converters in self.converters:
            value = values[index]
            for converter in converters:
                value = converter(value, field, connection)
            values[index] = value
        return self.model.from_db(connection.alias, self.attnames, values)


def _loaders(hot: bool) -> tuple[_Loader, _Loader]:
    return (
        _Loader.of(JourneySession, HOT_SESSION_FIELDS if hot else None),
        _Loader.of(Visitor, HOT_VISITOR_FIELDS if hot else None),
    )


@functools.cache
def session_select_sql(
    extra_columns: tuple[str, ...] = (), lock: bool = False, hot: bool = False, hold: bool = False
) -> str:
    """``SELECT`` of a session (alias ``s``) and its visitor (``v``) by site and session id,
    then ``extra_columns`` (SQL expressions over ``s`` and ``v``); ``hold`` holds the
    visitor against erasure (:mod:`journeys.visitor_lock`), ``lock`` does that and locks
    the session row too; ``hot`` reads only the hot fields. Built once per shape."""
    sessions, visitors = _loaders(hot)
    columns = [*sessions.columns("s"), *visitors.columns("v"), *extra_columns]
    return (
        f"SELECT {', '.join(columns)} FROM {JourneySession._meta.db_table} s "
        f"JOIN {Visitor._meta.db_table} v ON v.id = s.visitor_id "
        "WHERE s.site_id = %s::bigint AND s.session_id = %s::text"
        + (f" AND {held('s.visitor_id')}" if hold or lock else "")
        + (" FOR NO KEY UPDATE OF s" if lock else "")
    )


def session_row_for(
    site: Site, session_id: str, *extra_columns: str, lock: bool = False, hot: bool = False, hold: bool = False
) -> tuple[JourneySession, tuple] | None:
    """The session with its visitor, and the values of ``extra_columns``: one query.

    It is on the hot path of every decision and stage update, so it is one hand-written
    join (built once from the models' fields) instead of an ORM query compiled per call;
    the instances are the ones ``select_related("visitor")`` would give (with ``hot``,
    the ones ``only()`` of :data:`HOT_SESSION_FIELDS` and :data:`HOT_VISITOR_FIELDS`
    would). Callers add what they need in the same round trip (the decision: the
    visitor's assignments). Inside a transaction, ``hold`` holds the visitor against
    erasure until it ends (:mod:`journeys.visitor_lock`; None if it was erased while
    this waited), and ``lock`` also locks the session row, as ``select_for_update`` would.
    """
    with prepared_cursor() as cursor:
        cursor.execute(session_select_sql(extra_columns, lock, hot, hold), [site.pk, session_id])
        row = cursor.fetchone()
    if row is None:
        return None
    sessions, visitors = _loaders(hot)
    split = len(sessions.fields)
    end = split + len(visitors.fields)
    session = sessions.load(row[:split])
    JourneySession.visitor.field.set_cached_value(session, visitors.load(row[split:end]))
    return session, row[end:]


def session_for(
    site: Site, session_id: str, *, lock: bool = False, hot: bool = False, hold: bool = False
) -> JourneySession | None:
    """The session with its visitor (see :func:`session_row_for`)."""
    found = session_row_for(site, session_id, lock=lock, hot=hot, hold=hold)
    return found[0] if found is not None else None


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


# --- whom the statistics count -------------------------------------------------------------


def human_sessions(field: str = "session") -> Q:
    """The rows the statistics count: those of sessions a person started, i.e. all but the
    automated ones (crawlers, headless browsers, floods: :mod:`journeys.automation`), unless
    ``AUTOMATED_SESSIONS_EXCLUDED`` is off. ``field`` names the session: ``"session"`` on
    a table that has one, ``"pk"`` on sessions themselves. The automated sessions are read
    from their partial index (``session_automated``), so the filter costs little however
    many sessions there are.
    """
    if not settings.AUTOMATED_SESSIONS_EXCLUDED:
        return Q()
    return ~Q(**{f"{field}__in": JourneySession.objects.exclude(automated="").values("pk")})


def human_sessions_sql(column: str) -> str:
    """:func:`human_sessions` in SQL, on a column holding a session id (``s.id``, ``e.session_id``)."""
    if not settings.AUTOMATED_SESSIONS_EXCLUDED:
        return "TRUE"
    return f"{column} NOT IN (SELECT id FROM {JourneySession._meta.db_table} WHERE automated <> '')"


def people_count(views: QuerySet) -> int:
    """How many people made ``views``, for claims such as "12 people viewed this".

    ``views`` holds one row per view (or order), its ``session_id`` the only column
    (``.values("session_id")``, unions of such querysets included). A person is a client
    address: however many sessions, visitor ids or page views an address sent, it counts
    once (a NAT's visitors too: never more people than there were); a session recorded
    without an address counts by its visitor. Left out entirely:

    - sessions a person did not start (:func:`human_sessions`: crawlers, headless
      browsers, floods);
    - an address with more than ``SOCIAL_PROOF_MAX_VISITORS_PER_ADDRESS`` visitors among
      the views, or a person with more than ``SOCIAL_PROOF_MAX_VIEWS_PER_PERSON`` views:
      that volume marks a flood (or a NAT too busy to tell), which must not raise a count.
    """
    views_sql, params = views.query.sql_with_params()
    sessions = JourneySession._meta.db_table
    sql = f"""
WITH per_session AS (SELECT v.session_id, count(*) AS views FROM ({views_sql}) v GROUP BY v.session_id)
SELECT count(*) FROM (
    SELECT 1
    FROM per_session p JOIN {sessions} s ON s.id = p.session_id
    WHERE {human_sessions_sql("s.id")}
    GROUP BY coalesce(nullif(s.client_hash, ''), 'visitor:' || s.visitor_id::text)
    HAVING count(DISTINCT s.visitor_id) <= %s AND sum(p.views) <= %s
) people"""
    limits = [settings.SOCIAL_PROOF_MAX_VISITORS_PER_ADDRESS, settings.SOCIAL_PROOF_MAX_VIEWS_PER_PERSON]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *limits])
        return cursor.fetchone()[0]
