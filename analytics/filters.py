"""The filters every dashboard page and analytics endpoint takes, parsed in one place."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone
from rest_framework.exceptions import ValidationError

from core.serializers import UNSTORABLE_TEXT, unstorable
from journeys.models import DeviceType, JourneyPath

DEFAULT_DAYS = 30
MAX_DAYS = 366
# Site ids are PostgreSQL bigints.
BIGINT_MAX = 9_223_372_036_854_775_807
EARLIEST_DATE_TO = dt.date.min + dt.timedelta(days=DEFAULT_DAYS - 1)


@dataclass(frozen=True)
class Filters:
    """Date range (inclusive, in the site's reporting time zone: UTC) and optional dimensions."""

    date_from: dt.date
    date_to: dt.date
    site_id: int | None = None
    device: str | None = None
    path: str | None = None
    persona: str | None = None

    @property
    def days(self) -> list[dt.date]:
        return [self.date_from + dt.timedelta(days=n) for n in range((self.date_to - self.date_from).days + 1)]

    def as_query(self) -> dict[str, str]:
        """The filters as query parameters, for links and CSV exports."""
        query = {"date_from": self.date_from.isoformat(), "date_to": self.date_to.isoformat()}
        for name in ("site_id", "device", "path", "persona"):
            value = getattr(self, name)
            if value not in (None, ""):
                query["site" if name == "site_id" else name] = str(value)
        return query


def filters_parse(params, *, today: dt.date | None = None) -> Filters:
    """Filters from query parameters; a bad value raises a ValidationError naming the field."""
    today = today or timezone.now().date()
    errors: dict[str, list[str]] = {}

    def date_param(name: str, default: dt.date | None) -> dt.date | None:
        raw = params.get(name) or ""
        if not raw:
            return default
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            errors[name] = [f"'{raw}' is not a date (YYYY-MM-DD)."]
            return default

    date_to = date_param("date_to", today)
    date_from = date_param("date_from", None)
    if date_from is None:
        try:
            date_from = date_to - dt.timedelta(days=DEFAULT_DAYS - 1)
        except OverflowError:
            errors["date_to"] = [f"Without date_from, must be on or after {EARLIEST_DATE_TO.isoformat()}."]
            date_from = date_to
    if not errors:
        if date_from > date_to:
            errors["date_from"] = ["Must not be after date_to."]
        elif (date_to - date_from).days >= MAX_DAYS:
            errors["date_from"] = [f"The range may span at most {MAX_DAYS} days."]

    site_id = None
    raw_site = params.get("site") or ""
    if raw_site:
        if raw_site.isascii() and raw_site.isdigit() and int(raw_site) <= BIGINT_MAX:
            site_id = int(raw_site)
        else:
            errors["site"] = [f"'{raw_site}' is not a site id."]

    def choice_param(name: str, choices) -> str | None:
        raw = params.get(name) or ""
        if raw and raw not in choices:
            errors[name] = [f"'{raw}' is not one of {', '.join(sorted(choices))}."]
            return None
        return raw or None

    device = choice_param("device", DeviceType.values)
    path = choice_param("path", JourneyPath.values)
    persona = (params.get("persona") or "").strip() or None
    if persona and len(persona) > 50:
        errors["persona"] = ["At most 50 characters."]
    elif persona and unstorable(persona):
        errors["persona"] = [UNSTORABLE_TEXT]
    if errors:
        raise ValidationError(errors)
    return Filters(date_from=date_from, date_to=date_to, site_id=site_id, device=device, path=path, persona=persona)
