"""``bulk_generate`` (the dashboard benchmark's data) after ``bulk_fill`` became its shared code path."""

from __future__ import annotations

from datetime import date

from django.db.models import Sum

from analytics.models import SessionDaily, VariantDaily
from analytics.rollups import rollups_update
from devtools.bulk_data import bulk_generate
from journeys.models import ConversionEvent, JourneySession, Site, Touchpoint
from personalization.models import ClaimLedger, Exposure


def test_bulk_generate_makes_a_new_site_with_its_own_catalog_and_rolls_up_exactly(db):
    result = bulk_generate(
        sessions=2000, touchpoints_per_session=3, days=10, seed=7, last_day=date(2026, 11, 20), log=lambda line: None
    )

    site = Site.objects.get(pk=result.site_id)
    assert site.domain == "bulk-7-2000-3-10-20261120.invalid"
    sessions = JourneySession.objects.filter(site=site)
    assert sessions.count() == result.counts["sessions"] == 2000
    assert Touchpoint.objects.filter(site=site).count() == 6000
    days = {started.date() for started in sessions.values_list("started_at", flat=True)}
    assert min(days) >= date(2026, 11, 11) and max(days) <= date(2026, 11, 20)
    exposures = Exposure.objects.filter(session__site=site)
    assert exposures.count() == result.counts["exposures 1"] + result.counts["exposures 2"]
    assert set(exposures.values_list("experiment__key", flat=True)) == {"exp-1", "exp-2"}
    # one experiment per session, 90% of sessions
    assert exposures.values("session").distinct().count() == exposures.count()
    assert set(ClaimLedger.objects.filter(rule__site=site).values_list("text", flat=True)) == {"Only 3 left"}
    assert ConversionEvent.objects.filter(site=site).count() == result.counts["conversions"]

    assert rollups_update().keys == 10
    assert SessionDaily.objects.filter(site=site).aggregate(n=Sum("sessions"))["n"] == 2000
    assert VariantDaily.objects.filter(site=site).aggregate(n=Sum("exposures"))["n"] == exposures.count()
