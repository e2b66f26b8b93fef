"""The dashboards in headless Chromium: known traffic in, the numbers Plotly drew and the CSVs out."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import Page

from analytics import queries
from analytics.filters import filters_parse
from analytics.reports import VARIANT_FIELDS
from analytics.verdicts import percent
from journeys.models import JourneySession
from personalization.models import ApprovalRequest
from tests.analytics.dashboard_data import (
    HERO,
    REVENUE,
    guarded_experiment,
    hero_experiment,
    low_stock_rule,
    roll_up,
    shop_traffic,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ALL_RENDERED = """() => [...document.querySelectorAll('[data-chart][data-figure]')]
    .every(chart => chart.dataset.rendered === 'true')"""


def open_dashboard(page: Page, url: str) -> int:
    """Go to ``url`` and wait until every chart with a figure has been drawn; the HTTP status."""
    response = page.goto(url)
    page.wait_for_function(ALL_RENDERED)
    assert page.locator(".chart-loading").count() == 0
    return response.status


def traces(page: Page, key: str) -> list[dict]:
    """The data Plotly drew in the chart ``key`` (``gd.data``), as plain JSON."""
    return page.evaluate("id => JSON.parse(JSON.stringify(document.getElementById(id).data))", f"chart-{key}")


def download(page: Page, key: str) -> tuple[str, str]:
    """Click the chart's CSV link; the downloaded file's name and text."""
    with page.expect_download() as info:
        page.click(f'a[data-csv="{key}"]')
    return info.value.suggested_filename, open(info.value.path(), encoding="utf-8").read()


def test_overview_draws_the_rolled_up_traffic_and_exports_its_csv(staff_page, site, api, screenshot):
    # given: three sessions through the API, one buying for 49.90, rolled up by the task
    shop_traffic(api)
    roll_up()
    today = timezone.now().date()
    days = filters_parse({}).days
    assert {session.started_at.date() for session in JourneySession.objects.all()} == {today}

    # when: the staff user goes from the admin to the dashboards
    staff_page.click("#user-tools >> text=Dashboards")
    staff_page.wait_for_url("**/dashboards/")
    open_dashboard(staff_page, f"/dashboards/?site={site.pk}")
    screenshot(staff_page, "overview")

    # then: the tiles, the daily series, the funnel and the paths hold exactly the traffic
    # the tiles carry their definitions and currency; the rate is the funnel's conversion share
    small = "<span style='font-size:0.75em;color:#666'>{}</span>"
    assert [(t["title"]["text"], t["value"]) for t in traces(staff_page, "overview-totals")] == [
        (f"Sessions<br>{small.format('started in the range')}", 3),
        (f"Conversion rate<br>{small.format('reached the conversion stage ÷ sessions')}", 1 / 3),
        (f"Revenue (EUR)<br>{small.format('conversion values')}", 49.9),
    ]
    assert traces(staff_page, "overview-totals")[2]["number"]["suffix"] == " EUR"
    assert "Conversion rate on this page: sessions that reached the conversion stage" in staff_page.inner_text(
        ".section-intro"
    )
    series = {t["name"]: t for t in traces(staff_page, "overview-timeseries")}
    assert list(series) == ["sessions", "conversions", "conversion_rate", "revenue"]
    assert all(t["x"] == [day.isoformat() for day in days] for t in series.values())
    on_today = [day == today for day in days]
    assert series["sessions"]["y"] == [3 if is_today else 0 for is_today in on_today]
    assert series["conversions"]["y"] == [1 if is_today else 0 for is_today in on_today]
    assert series["conversion_rate"]["y"] == [1 / 3 if is_today else None for is_today in on_today]
    assert series["revenue"]["y"] == [49.9 if is_today else 0.0 for is_today in on_today]
    [funnel] = traces(staff_page, "overview-funnel")
    assert (funnel["y"], funnel["x"]) == (
        ["awareness", "consideration", "decision", "conversion", "retention"],
        [3, 2, 1, 1, 0],
    )
    bars, rates = traces(staff_page, "overview-paths")
    assert (bars["x"], bars["y"]) == (["mobile_tiktok_fast_track", "desktop_research_deep"], [2, 1])
    assert rates["y"] == [0.5, 0.0]

    # and: the funnel's CSV is its table, for the same filters
    name, text = download(staff_page, "overview-funnel")
    assert name == f"overview-funnel_{days[0].isoformat()}_{today.isoformat()}.csv"
    assert text == queries.funnel(filters_parse({"site": str(site.pk)})).to_csv()
    assert text == (
        "stage,sessions_reached,share_of_sessions,drop_off,drop_off_rate\n"
        "awareness,3,1.0,0,\n"
        f"consideration,2,{2 / 3},1,{1 / 3}\n"
        f"decision,1,{1 / 3},1,0.5\n"
        f"conversion,1,{1 / 3},0,0.0\n"
        "retention,0,0.0,1,1.0\n"
    )
    _, totals_csv = download(staff_page, "overview-totals")
    assert totals_csv == (
        "sessions,conversions,conversion_rate,sessions_with_any_conversion,conversion_events,revenue,currency,"
        "revenue_per_session,cross_device_share\n"
        f"3,1,{1 / 3},1,1,{REVENUE},EUR,{float(REVENUE) / 3},0.0\n"
    )


def test_journeys_draw_a_sankey_per_path_and_the_persona_mix(staff_page, site, api, screenshot):
    shop_traffic(api)
    roll_up()

    open_dashboard(staff_page, "/dashboards/journeys/")
    screenshot(staff_page, "journeys")

    [mobile] = traces(staff_page, "journeys-flow-mobile_tiktok_fast_track")
    assert mobile["type"] == "sankey"
    assert mobile["node"]["label"] == ["start", "awareness", "consideration", "decision", "conversion"]
    assert (mobile["link"]["source"], mobile["link"]["target"], mobile["link"]["value"]) == (
        [0, 1, 2, 3],
        [1, 2, 3, 4],
        [2, 1, 1, 1],
    )
    [desktop] = traces(staff_page, "journeys-flow-desktop_research_deep")
    assert desktop["node"]["label"] == ["start", "awareness", "consideration"]
    assert (desktop["link"]["source"], desktop["link"]["target"], desktop["link"]["value"]) == ([0, 1], [1, 2], [1, 1])
    [personas] = traces(staff_page, "journeys-personas")
    assert (personas["labels"], personas["values"]) == (["TechEarlyAdopter", "Researcher"], [2, 1])
    paths = {t["name"]: t["y"] for t in traces(staff_page, "journeys-time-to-convert")}
    assert paths == {"mobile_tiktok_fast_track": [1, 0, 0, 0, 0]}
    [share] = traces(staff_page, "journeys-cross-device")
    assert share["y"][-1] == 0.0

    _, text = download(staff_page, "journeys-flow-mobile_tiktok_fast_track")
    assert text == (
        "from_stage,to_stage,count,sessions\n"
        "start,awareness,2,2\n"
        "awareness,consideration,1,1\n"
        "consideration,decision,1,1\n"
        "decision,conversion,1,1\n"
    )


def test_experiments_show_the_api_numbers_and_link_proposals_to_the_approvals_queue(
    staff_page, browser_staff_user, site, staff_api, screenshot
):
    browser_staff_user.groups.add(Group.objects.get(name="Approvers"))
    experiment = hero_experiment(site)
    roll_up()
    report = staff_api.get(f"/api/v1/analytics/experiments/{experiment.key}").json()

    open_dashboard(staff_page, "/dashboards/experiments/")
    screenshot(staff_page, "experiments")

    [rates] = traces(staff_page, "experiment-hero-test-variants")
    assert (rates["x"], rates["y"]) == (["hero-test-a", "hero-test-b"], [0.1, 0.2])
    assert [v["rate"] for v in report["variants"]] == [0.1, 0.2]
    [lift] = traces(staff_page, "experiment-hero-test-lift")
    treatment = report["variants"][1]
    assert (lift["x"], lift["base"], lift["y"]) == (
        ["hero-test-b"],
        [treatment["ci_low"]],
        [treatment["ci_high"] - treatment["ci_low"]],
    )
    allocation = {t["name"]: t["y"] for t in traces(staff_page, "experiment-hero-test-allocation")}
    assert allocation == {"hero-test-a": [0.5], "hero-test-b": [0.5]}
    assert staff_page.inner_text('[data-fact="srm"]') == f"OK (p = {report['srm']['p_value']:g})"
    row = 'table.experiment-variants tr[data-variant="hero-test-b"]'
    assert staff_page.inner_text(f'{row} [data-number="chance_to_beat_control"]') == "100.0%"
    assert staff_page.inner_text(f'{row} [data-number="rate"]') == "20.00%"
    assert staff_page.inner_text(f'{row} [data-number="relative_lift"]') == (
        f"+100% ({percent(treatment['confidence_low'])} to {percent(treatment['confidence_high'])})"
    )
    assert staff_page.inner_text("[data-verdict-text]") == report["verdict"]["text"]
    assert report["verdict"]["kind"] == "winner"

    # the variants' CSV holds the API's numbers
    _, text = download(staff_page, "experiment-hero-test-variants")
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(VARIANT_FIELDS)
    writer.writerows([variant[name] for name in VARIANT_FIELDS] for variant in report["variants"])
    assert text == expected.getvalue()
    assert [(v["exposures"], v["conversions"]) for v in report["variants"]] == list(HERO.values())

    # the optimizer's winner proposal waits in the approvals queue: its link opens its request there
    [proposal] = report["proposals"]
    assert proposal["kind"] == "declare_winner"
    request = ApprovalRequest.objects.get(content_type__model="optimizationproposal", object_id=proposal["id"])
    link = staff_page.locator(f'li[data-proposal="{proposal["id"]}"] a')
    assert link.get_attribute("href") == f"/admin/personalization/approvalrequest/{request.pk}/change/"
    staff_page.goto("/admin/personalization/approvalrequest/?status__exact=pending")
    screenshot(staff_page, "experiments-approvals-queue")
    assert (
        staff_page.locator(
            f'#result_list a[href^="/admin/personalization/approvalrequest/{request.pk}/change/"]'
        ).count()
        == 1
    )


def test_experiments_put_the_verdict_first_with_revenue_and_a_worse_guardrail_in_red(
    staff_page, site, staff_api, screenshot
):
    # given: an experiment whose treatment converts and earns more but bounces more
    experiment = guarded_experiment(site)
    roll_up()
    report = staff_api.get(f"/api/v1/analytics/experiments/{experiment.key}").json()
    control, treatment = report["variants"]

    # when
    open_dashboard(staff_page, "/dashboards/experiments/")
    screenshot(staff_page, "experiments-verdict")

    # then: the verdict names the guardrail, in red, above everything else of the experiment
    bounce = next(g for g in treatment["guardrails"] if g["metric"] == "bounce_rate")
    verdict = staff_page.locator('[data-verdict="guardrail"]')
    assert verdict.inner_text() == (
        f"Verdict: guardrail bounce rate worse for offer-test-b (bounce rate {percent(bounce['relative_change'])}, "
        f"95% interval {percent(bounce['ci_low'])} to {percent(bounce['ci_high'])})"
    )
    assert report["verdict"]["kind"] == "guardrail"
    red = "rgb(186, 33, 33)"
    assert verdict.locator("[data-verdict-text]").evaluate("e => getComputedStyle(e).color") == red

    # and: revenue in euros, per session and per order, with the change and its interval
    revenue_row = 'table.experiment-revenue tr[data-variant="offer-test-{}"]'
    assert staff_page.inner_text(f'{revenue_row.format("a")} [data-number="revenue"]') == "10,000.00 EUR"
    assert staff_page.inner_text(f'{revenue_row.format("b")} [data-number="revenue"]') == "15,400.00 EUR"
    assert staff_page.inner_text(f'{revenue_row.format("b")} [data-number="revenue_per_session"]') == "7.70 EUR"
    assert staff_page.inner_text(f'{revenue_row.format("b")} [data-number="average_order_value"]') == "55.00 EUR"
    per_session = treatment["revenue"]["per_session"]
    assert staff_page.inner_text(f'{revenue_row.format("b")} [data-change="revenue_per_session"]') == (
        f"+54% ({percent(per_session['ci_low'])} to {percent(per_session['ci_high'])})"
    )
    assert staff_page.inner_text("h3:has-text('Revenue')") == "Revenue (EUR)"

    # and: the bounce rate cells of the treatment are red, the others are not
    guardrail_row = 'table.experiment-guardrails tr[data-variant="offer-test-b"]'
    bounce_cell = staff_page.locator(f'{guardrail_row} [data-guardrail="bounce_rate"]')
    assert bounce_cell.inner_text() == "30.0%"
    assert bounce_cell.evaluate("e => getComputedStyle(e).color") == red
    assert staff_page.inner_text(f'{guardrail_row} [data-change="bounce_rate"]').endswith(" worse")
    assert staff_page.locator(f"{guardrail_row} td.guardrail-worse").count() == 2
    assert staff_page.inner_text(f'{guardrail_row} [data-guardrail="time_to_convert"]') == "6.0 min"
    assert staff_page.inner_text('table.experiment-variants tr[data-variant="offer-test-b"] [data-number="rate"]') == (
        "14.00%"
    )
    # no winner proposal while the guardrail is worse
    assert report["proposals"] == []


def test_scarcity_shows_the_rule_the_ledger_and_no_flags(staff_page, site, api, django_user_model, screenshot):
    low_stock_rule(site, api, django_user_model)
    roll_up()

    open_dashboard(staff_page, "/dashboards/scarcity/")
    screenshot(staff_page, "scarcity")

    exposed, holdout = traces(staff_page, "scarcity-rules")
    assert (exposed["x"], exposed["y"], holdout["y"]) == (["low-stock"], [0.0], [None])
    [impressions] = traces(staff_page, "scarcity-impressions")
    assert (impressions["name"], impressions["x"], impressions["y"]) == (
        "low-stock",
        [timezone.now().date().isoformat()],
        [1],
    )
    [ledger] = traces(staff_page, "scarcity-ledger")
    columns = dict(zip(ledger["header"]["values"], ledger["cells"]["values"], strict=True))
    assert (columns["rule"], columns["session"], columns["text"]) == (["low-stock"], ["s-cue"], ["Only 3 left"])
    flags = staff_page.locator("#chart-scarcity-flags")
    assert flags.get_attribute("data-empty") == "true"
    assert "No monitor flags" in flags.inner_text()

    _, text = download(staff_page, "scarcity-rules")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["rule"], r["impressions"], r["exposed_sessions"], r["holdout_sessions"]) for r in rows] == [
        ("low-stock", "1", "1", "0")
    ]


def test_personalization_performance_by_type_and_strategy(staff_page, site, api, django_user_model, screenshot):
    low_stock_rule(site, api, django_user_model)
    roll_up()

    open_dashboard(staff_page, "/dashboards/personalization/")
    screenshot(staff_page, "personalization")

    applications, conversions = traces(staff_page, "personalization-applications")
    assert (applications["x"], applications["y"], conversions["y"]) == (["content / research_overview"], [1], [0])
    rate, confidence = traces(staff_page, "personalization-rates")
    assert (rate["y"], confidence["y"]) == ([0.0], [0.8])
    _, text = download(staff_page, "personalization-engagement")
    assert text == (
        "personalization_type,strategy,applications,engagement_time,mean_engagement_time,conversions,"
        "conversion_rate,mean_confidence\ncontent,research_overview,1,0,0.0,0,0.0,0.8\n"
    )


def test_a_range_without_data_explains_what_to_do_and_a_bad_filter_names_the_field(staff_page, site, api, screenshot):
    shop_traffic(api)
    roll_up()

    status = open_dashboard(staff_page, "/dashboards/?date_from=2020-01-01&date_to=2020-01-31")
    screenshot(staff_page, "overview-empty")
    assert status == 200
    assert "No sessions in this range yet" in staff_page.inner_text("#dashboard-empty")
    assert "make run" in staff_page.inner_text("#dashboard-empty")
    assert staff_page.locator("[data-chart][data-figure]").count() == 0
    assert staff_page.locator('[data-chart][data-empty="true"]').count() == 5  # the automated sessions' too

    response = staff_page.goto("/dashboards/journeys/?date_from=yesterday&device=fridge")
    screenshot(staff_page, "journeys-bad-filter")
    assert response.status == 400
    errors = staff_page.locator("#filter-errors li")
    assert errors.all_inner_texts() == [
        "date_from: 'yesterday' is not a date (YYYY-MM-DD).",
        "device: 'fridge' is not one of desktop, mobile, tablet.",
    ]
    assert staff_page.get_attribute("#filter-device", "aria-invalid") == "true"


def test_anonymous_visitors_are_sent_to_the_admin_login(new_page):
    page = new_page()

    page.goto("/dashboards/scarcity/")

    assert page.url.endswith("/admin/login/?next=/dashboards/scarcity/")
