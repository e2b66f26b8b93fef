"""Dashboard pages without a browser: who may see them, their CSV exports, bad filters, and parity with the API."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from django.test import Client

from analytics import queries
from analytics.filters import filters_parse
from analytics.reports import VARIANT_FIELDS
from tests.analytics.dashboard_data import hero_experiment, low_stock_rule, roll_up, shop_traffic

PAGES = ["/dashboards/", "/dashboards/journeys/", "/dashboards/experiments/", "/dashboards/scarcity/"]
PAGES += ["/dashboards/personalization/"]


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def csv_keys(html: str) -> list[str]:
    return re.findall(r'data-csv="([^"]+)"', html)


def csv_of(client: Client, page: str, key: str, **params) -> str:
    response = client.get(page, {**params, "format": "csv", "chart": key})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return response.content.decode()


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES)
def test_anonymous_users_are_redirected_to_the_admin_login(client, page):
    response = client.get(page, {"format": "csv", "chart": "overview-funnel"})

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={page}%3Fformat%3Dcsv%26chart%3Doverview-funnel"


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES)
def test_signed_in_users_who_are_not_staff_are_refused(client, django_user_model, page):
    client.force_login(django_user_model.objects.create_user("visitor", password="pw-visitor-123"))

    assert client.get(page).status_code == 403
    assert client.get(page, {"format": "csv", "chart": "overview-funnel"}).status_code == 403


@pytest.mark.django_db
def test_without_data_every_page_says_what_to_do(staff_client):
    for page in PAGES:
        response = staff_client.get(page)

        assert response.status_code == 200
        html = response.content.decode()
        assert 'id="dashboard-empty"' in html, page
        assert "data-figure=" not in html, page
    overview = staff_client.get("/dashboards/").content.decode()
    assert "No sessions in this range yet. Run `make run`" in overview
    assert "POST /api/v1/events" in overview


@pytest.mark.django_db
def test_each_chart_csv_is_exactly_its_table(staff_client, site, api):
    shop_traffic(api)
    roll_up()
    filters = filters_parse({"site": str(site.pk)})
    expected = {
        "overview-totals": queries.overview_totals(filters),
        "overview-timeseries": queries.overview_timeseries(filters),
        "overview-funnel": queries.funnel(filters),
        "overview-paths": queries.paths_compared(filters),
        "overview-automated": queries.automated_sessions(filters),
    }

    html = staff_client.get("/dashboards/", {"site": site.pk}).content.decode()

    assert csv_keys(html) == list(expected)
    for key, table in expected.items():
        assert csv_of(staff_client, "/dashboards/", key, site=site.pk) == table.to_csv()
    assert rows_of(expected["overview-totals"].to_csv()) == [
        {
            "sessions": "3",
            "conversions": "1",
            "conversion_rate": str(1 / 3),
            "sessions_with_any_conversion": "1",
            "conversion_events": "1",
            "revenue": "49.90",
            "currency": "EUR",
            "revenue_per_session": str(49.9 / 3),
            "cross_device_share": "0.0",
        }
    ]
    response = staff_client.get("/dashboards/", {"site": site.pk, "format": "csv", "chart": "overview-funnel"})
    assert response["Content-Disposition"] == (
        f'attachment; filename="overview-funnel_{filters.date_from.isoformat()}_{filters.date_to.isoformat()}.csv"'
    )


@pytest.mark.django_db
def test_every_chart_on_every_page_exports_its_csv(staff_client, site, api, django_user_model):
    shop_traffic(api)
    low_stock_rule(site, api, django_user_model)
    hero_experiment(site)
    roll_up()

    for page in PAGES:
        html = staff_client.get(page).content.decode()
        keys = csv_keys(html)
        assert keys, page
        for key in keys:
            assert re.search(rf'<div id="chart-{key}" class="chart[^"]*" data-chart="{key}"', html), key
            assert csv_of(staff_client, page, key).splitlines()[0], key


@pytest.mark.django_db
def test_bad_filters_give_a_400_page_naming_each_field(staff_client):
    response = staff_client.get(
        "/dashboards/", {"date_from": "2026-13-01", "site": "shop", "device": "fridge", "path": "nowhere"}
    )

    assert response.status_code == 400
    errors = re.findall(r'<li data-field="([^"]+)"><strong>[^<]+</strong>: ([^<]+)</li>', response.content.decode())
    assert errors == [
        ("date_from", "&#x27;2026-13-01&#x27; is not a date (YYYY-MM-DD)."),
        ("site", "&#x27;shop&#x27; is not a site id."),
        ("device", "&#x27;fridge&#x27; is not one of desktop, mobile, tablet."),
        (
            "path",
            "&#x27;nowhere&#x27; is not one of desktop_research_deep, mobile_tiktok_fast_track, "
            "returning_visitor_personalized, standard_conversion_funnel.",
        ),
    ]
    assert "data-chart=" not in response.content.decode()


@pytest.mark.django_db
def test_a_range_ending_before_it_starts_names_date_from(staff_client):
    response = staff_client.get("/dashboards/journeys/", {"date_from": "2026-02-01", "date_to": "2026-01-01"})

    assert response.status_code == 400
    assert '<li data-field="date_from"><strong>date_from</strong>: Must not be after date_to.</li>' in (
        response.content.decode()
    )


@pytest.mark.django_db
def test_bad_filters_or_an_unknown_chart_in_a_csv_export_are_named_in_plain_text(staff_client):
    bad = staff_client.get("/dashboards/scarcity/", {"format": "csv", "chart": "scarcity-rules", "date_to": "soon"})
    unknown = staff_client.get("/dashboards/scarcity/", {"format": "csv", "chart": "overview-funnel"})

    assert (bad.status_code, bad["Content-Type"]) == (400, "text/plain; charset=utf-8")
    assert bad.content.decode() == "date_to: 'soon' is not a date (YYYY-MM-DD).\n"
    assert unknown.status_code == 404
    assert (
        unknown.content.decode() == "chart: 'overview-funnel' is not a chart of the Scarcity page for these filters.\n"
    )


@pytest.mark.django_db
def test_experiment_page_and_api_give_the_same_numbers(staff_client, staff_api, site):
    experiment = hero_experiment(site)
    roll_up()

    report = staff_api.get(f"/api/v1/analytics/experiments/{experiment.key}").json()
    exported = csv_of(staff_client, "/dashboards/experiments/", "experiment-hero-test-variants")

    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(VARIANT_FIELDS)
    writer.writerows([variant[name] for name in VARIANT_FIELDS] for variant in report["variants"])
    assert exported == expected.getvalue()
    html = staff_client.get("/dashboards/experiments/").content.decode()
    [proposal] = report["proposals"]
    assert f'<li data-proposal="{proposal["id"]}">declare_winner' in html
    assert re.search(
        rf'data-proposal="{proposal["id"]}">[^<]*<a href="/admin/personalization/approvalrequest/\d+/change/">', html
    )


@pytest.mark.django_db
def test_scarcity_page_and_apis_give_the_same_numbers(staff_client, staff_api, site, api, django_user_model):
    low_stock_rule(site, api, django_user_model)
    roll_up()
    filters = filters_parse({})
    until = filters.date_to + dt.timedelta(days=1)

    [row] = rows_of(csv_of(staff_client, "/dashboards/scarcity/", "scarcity-rules"))
    rollup = staff_api.get("/api/v1/analytics/scarcity/daily", {"shape": "records"}).json()
    raw = staff_api.get(
        "/api/v1/analytics/scarcity", {"since": filters.date_from.isoformat(), "until": until.isoformat()}
    ).json()

    # The page's table is the dashboard API's (both from the rollups)...
    [record] = rollup["tables"]["scarcity_rules"]
    assert row == {name: "" if value is None else str(value) for name, value in record.items()}
    # ...and, for sessions that became eligible on the day they started, the raw counts
    [rule] = raw["rules"]
    assert row == {
        "site": "Shop",
        "rule": rule["rule"],
        "trigger_type": rule["trigger_type"],
        "offer": rule["offer"],
        "status": rule["status"],
        "holdout_share": str(rule["holdout_share"]),
        "impressions": str(rule["impressions"]),
        "sessions_shown": str(rule["sessions_shown"]),
        "exposed_sessions": str(rule["exposed"]["sessions"]),
        "exposed_conversions": str(rule["exposed"]["conversions"]),
        "exposed_rate": str(rule["exposed"]["rate"]),
        "holdout_sessions": str(rule["holdout"]["sessions"]),
        "holdout_conversions": str(rule["holdout"]["conversions"]),
        "holdout_rate": "" if rule["holdout"]["rate"] is None else str(rule["holdout"]["rate"]),
        **{name: "" if value is None else str(value) for name, value in rule["lift"].items()},
    }
    assert (rule["impressions"], rule["exposed"]["sessions"]) == (1, 1)


@pytest.mark.django_db
def test_overview_page_and_dashboard_api_give_the_same_numbers(staff_client, staff_api, site, api):
    shop_traffic(api)
    roll_up()

    body = staff_api.get("/api/v1/analytics/overview", {"site": site.pk}).json()

    for key, table in (("overview-funnel", "funnel"), ("overview-paths", "paths_compared")):
        exported = rows_of(csv_of(staff_client, "/dashboards/", key, site=site.pk))
        api_table = body["tables"][table]
        assert [list(row) for row in exported] == [api_table["columns"]] * len(exported)
        assert [list(row.values()) for row in exported] == [
            ["" if cell is None else str(cell) for cell in row] for row in api_table["rows"]
        ]


def test_a_filter_the_database_cannot_store_is_a_400_page_naming_it(staff_client):
    """The dashboards parse the same filters as the API, where the schema test found a NUL in
    ``persona`` reaching the rollup query (a 500)."""
    response = staff_client.get("/dashboards/", {"persona": "Tech\x00Adopter"})

    assert response.status_code == 400
    assert "Text must not contain NUL characters" in response.content.decode()
