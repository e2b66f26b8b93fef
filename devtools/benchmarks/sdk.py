"""The browser SDK's budgets (PRODUCT.md section 9), measured in headless Chromium.

- size: ``static/sdk/journey.js`` gzipped as the engine serves it (budget 8 KB);
- page load to slots filled: a shop page on its own origin (``devtools.pages``) with
  three declarative slots, loaded in a fresh browser context each time (a new visitor:
  the SDK starts the session and decides the slots in one request), against the engine
  under gunicorn; the time from navigation start to the moment the last slot carries its
  variant, read in the page by a MutationObserver on ``performance.now()``. Also the
  same for a returning page view of the same session (``/decide``). Budget: p95 <= 150 ms;
- delivery: 1,000 scripted page views (visitors walking through pages, each page tracking
  three events and navigating away at once, so what is queued leaves by beacon), each
  visitor flushing at the end. Budget: every event stored exactly once (counted by the
  event's own logical key, not only by its id).

Chromium comes from ``CHROMIUM_PATH`` (default ``/usr/bin/chromium``), driven by Playwright.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import statistics
import time

from django.db.models import Count

from devtools.benchmarks import decision as decisions
from devtools.benchmarks.base import Benchmark, BenchOptions, BenchResult, Check, Series, Server, ServerSpec
from devtools.pages import PageServer, sdk_page
from journeys.models import JourneySession, QuarantinedEvent, Touchpoint
from journeys.sdk import SDK_SOURCE
from journeys.services.sites import site_origins_set

SIZE_BUDGET_BYTES = 8 * 1024
FILLED_P95_MS = 150.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic"]
EVENTS_PER_PAGE = 3

# Runs in the page before the SDK: resolves with performance.now() once every slot shows a variant.
FILLED_PROBE = """<script>
window.__filled = new Promise((resolve) => {
  const done = () => !document.querySelector("[data-journey-slot]:not([data-journey-variant])")
    && document.querySelector("[data-journey-slot]");
  const observer = new MutationObserver(() => { if (done()) { observer.disconnect(); resolve(performance.now()); } });
  observer.observe(document.documentElement, {subtree: true, childList: true, attributes: true,
    attributeFilter: ["data-journey-variant"]});
});
</script>"""


def slots_html() -> str:
    return "".join(
        f'<section data-journey-slot="{slot}"><h2 data-journey-field="headline">Default {slot}</h2></section>'
        for slot in decisions.SLOTS
    )


# Tracks EVENTS_PER_PAGE events named after the page once the session is ready, then says so.
TRACK_PAGE = """<script>
(function wait() {
  if (!window.journey || !window.journey.ready) return setTimeout(wait, 5);
  journey.ready(() => {
    const page = new URLSearchParams(location.search).get("n");
    for (let k = 0; k < EVENTS_PER_PAGE; k++) journey.track("bench_click", {n: page + "-" + k});
    window.__tracked = true;
  });
})();
</script>""".replace("EVENTS_PER_PAGE", str(EVENTS_PER_PAGE))


def _chromium():
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"), args=CHROMIUM_ARGS
    )
    return playwright, browser


@contextlib.contextmanager
def _browser_phase():
    """Playwright's sync API runs an event loop in this thread; no ORM call happens meanwhile."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright, browser = _chromium()
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _fill_times(browser, url: str, loads: int) -> tuple[list[float], list[float]]:
    """(first page view, second page view of the same session) ms from navigation to filled, per visitor."""
    first, again = [], []
    for _ in range(loads):
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(url)
            first.append(page.evaluate("window.__filled"))
            page.goto(url + "?again=1")
            again.append(page.evaluate("window.__filled"))
        finally:
            context.close()
    return first, again


def _walk(browser, url: str, visitors: int, pages: int) -> list[str]:
    """Every visitor walks ``pages`` pages, navigating away as soon as a page tracked its
    events; then flushes. Returns the logical keys of the events tracked."""
    tracked = []
    for visitor in range(visitors):
        context = browser.new_context()
        try:
            page = context.new_page()
            for number in range(pages):
                key = f"v{visitor}p{number}"
                page.goto(f"{url}?n={key}")
                page.wait_for_function("window.__tracked === true")
                tracked += [f"{key}-{k}" for k in range(EVENTS_PER_PAGE)]
            page.evaluate("journey.flush()")
        finally:
            context.close()
    return tracked


def sdk_benchmark(options: BenchOptions) -> BenchResult:
    loads = options.param("loads", 20 if options.quick else 100, int)
    visitors = options.param("visitors", 10 if options.quick else 50, int)
    pages = options.param("pages", 20, int)
    result = BenchResult("sdk")
    source = SDK_SOURCE.read_bytes()
    size = len(gzip.compress(source, compresslevel=9, mtime=0))
    result.series.append(Series("SDK size, gzipped", "bytes", [size]))
    result.checks.append(Check("SDK gzipped size", size, SIZE_BUDGET_BYTES, "bytes", higher_is_better=False))

    made = decisions.decision_site("sdk", 0, scarcity=True)
    spec = ServerSpec("gunicorn", workers=options.param("workers", 4, int))
    try:
        with PageServer() as shop, Server(spec) as server:
            site_origins_set(site=made.sessions.site, allowed_origins=[shop.origin])
            engine = f"http://127.0.0.1:{server.port}"
            page = sdk_page(
                script_src=f"{engine}/sdk/v1/journey.js", site_key=made.key, head=FILLED_PROBE, body=slots_html()
            )
            filled_url = shop.page("/product", page)
            walk_url = shop.page(
                "/walk", sdk_page(script_src=f"{engine}/sdk/v1/journey.js", site_key=made.key, body=TRACK_PAGE)
            )
            time.sleep(0.6)  # every server process re-reads the sites' origins (checked every 0.5 s)
            with _browser_phase() as browser:
                _fill_times(browser, filled_url, 3)  # warm-up: imports, caches, connections
                runs_first, runs_again = [], []
                for _ in range(options.repeats):
                    first, again = _fill_times(browser, filled_url, loads)
                    runs_first.append(first)
                    runs_again.append(again)
                started = time.monotonic()
                tracked = _walk(browser, walk_url, visitors, pages)
                walk_seconds = time.monotonic() - started
            stored = _stored_counts(made.sessions.site)
    finally:
        decisions.decision_site_delete(made)

    first_p95 = [decisions.percentile(run, 0.95) for run in runs_first]
    again_p95 = [decisions.percentile(run, 0.95) for run in runs_again]
    result.series += [
        Series("load to slots filled, new visitor, p50", "ms", [statistics.median(run) for run in runs_first]),
        Series("load to slots filled, new visitor, p95", "ms", first_p95),
        Series("load to slots filled, same session again, p95", "ms", again_p95),
    ]
    result.checks.append(
        Check("page load to slots filled p95 (new visitor)", statistics.median(first_p95), FILLED_P95_MS, "ms", False)
    )
    result.checks.append(
        Check(
            "page load to slots filled p95 (page view in session)",
            statistics.median(again_p95),
            FILLED_P95_MS,
            "ms",
            False,
        )
    )

    expected = set(tracked)
    counts = stored["bench_click"]
    lost = len(expected - set(counts))
    twice = sum(1 for key in expected if counts.get(key, 0) > 1)
    result.series += [
        Series("page views walked", "", [visitors * pages]),
        Series("events tracked", "", [len(tracked)]),
        Series("events stored exactly once", "", [sum(1 for key in expected if counts.get(key) == 1)]),
        Series("events lost", "", [lost]),
        Series("events stored more than once", "", [twice]),
        Series("page_view touchpoints stored", "", [stored["page_views"]]),
        Series("quarantined events", "", [stored["quarantined"]]),
    ]
    result.checks.append(Check("events lost over the walk", lost + stored["quarantined"], 0, "", False))
    result.checks.append(Check("events stored more than once over the walk", twice, 0, "", False))
    result.checks.append(Check("page views stored exactly once", stored["page_views"], visitors * pages, ""))
    result.setup = {
        "server": spec.label,
        "browser": "headless Chromium (Debian) through Playwright, a new context per visitor",
        "slots": decisions.SLOTS,
        "loads_per_run": loads,
        "walk": f"{visitors} visitors x {pages} page views, {EVENTS_PER_PAGE} events each, navigating away at once",
        "walk_seconds": round(walk_seconds, 1),
    }
    result.notes.append(
        "Filled time: performance.now() (from navigation start) when the last [data-journey-slot] "
        "got its data-journey-variant; it includes fetching the page, the SDK and the decision."
    )
    return result


def _stored_counts(site) -> dict:
    touchpoints = Touchpoint.objects.filter(site=site)
    clicks = (
        touchpoints.filter(type="bench_click").values_list("interaction_data__n").annotate(times=Count("id")).order_by()
    )
    page_views = touchpoints.filter(
        type="page_view", session__in=JourneySession.objects.filter(site=site), page_url__contains="/walk"
    ).count()
    return {
        "bench_click": {key: times for key, times in clicks},
        "page_views": page_views,
        "quarantined": QuarantinedEvent.objects.filter(site=site).count(),
    }


BENCHMARK = Benchmark(
    "sdk",
    "the browser SDK: its size, page load to slots filled in Chromium, delivery over 1,000 page views",
    sdk_benchmark,
)
