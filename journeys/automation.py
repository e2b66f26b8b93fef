"""Which sessions a program, not a person, started: known crawlers and headless browsers.

A session is marked at its start (``JourneySession.automated``, the reason; empty for a
person) from two signals:

- the ``User-Agent`` of the session start: a known crawler (search engines, SEO and AI
  crawlers, link previews, uptime monitors), or a headless browser that says so
  (``HeadlessChrome``, ``PhantomJS``, ...);
- ``device.webdriver`` sent by the SDK: ``navigator.webdriver`` is true in a browser
  driven by automation (Playwright, Puppeteer, Selenium), whatever its user agent says;
- its client address went over its rate limit lately (``flood``: ``journeys.rate_limits``,
  which also marks the address's sessions started before the limit held).

Statistics leave marked sessions out unless ``AUTOMATED_SESSIONS_EXCLUDED`` is off
(:func:`journeys.selectors.human_sessions`). The lists follow what crawler lists such as
``monperrus/crawler-user-agents`` and Matomo's device detector match, kept short: named
bots, then the generic marks nearly every well-behaved crawler carries (``...bot/``
with a version, ``crawler``, ``spider``, a ``+http`` contact URL). An empty user agent
(a server calling the API, a test client) marks nothing.
"""

from __future__ import annotations

import re

CRAWLER = "crawler"
HEADLESS = "headless"
WEBDRIVER = "webdriver"
FLOOD = "flood"

_HEADLESS_UA = re.compile(r"HeadlessChrome|PhantomJS|HeadlessEdg|SlimerJS|Puppeteer|Playwright|Lighthouse", re.I)
_CRAWLER_UA = re.compile(
    r"Googlebot|Google-InspectionTool|AdsBot-Google|Mediapartners-Google|Storebot-Google|bingbot|BingPreview|"
    r"Slurp|DuckDuckBot|Baiduspider|YandexBot|YandexImages|Exabot|Applebot|AhrefsBot|SemrushBot|MJ12bot|"
    r"DotBot|PetalBot|Bytespider|GPTBot|ChatGPT-User|ClaudeBot|anthropic-ai|CCBot|PerplexityBot|Amazonbot|"
    r"facebookexternalhit|Facebot|meta-externalagent|Twitterbot|LinkedInBot|Slackbot|Discordbot|TelegramBot|"
    r"Pinterestbot|redditbot|Embedly|UptimeRobot|Pingdom|StatusCake|Site24x7|"
    r"[\w-]*bot/\d|[\w-]*crawler|[\w-]*spider|\+https?://",
    re.I,
)


def automated_reason(*, user_agent: str, webdriver: bool = False, flooding: bool = False) -> str:
    """Why a session is automated (``"crawler:Googlebot"``, ``"headless:HeadlessChrome"``,
    ``"webdriver"``, ``"flood"``), or ``""`` for what looks like a person's browser.
    ``flooding``: its address went over its rate limit lately (``journeys.rate_limits``)."""
    found = _CRAWLER_UA.search(user_agent)
    if found:
        return f"{CRAWLER}:{_name(found.group())}"
    found = _HEADLESS_UA.search(user_agent)
    if found:
        return f"{HEADLESS}:{found.group()}"
    if webdriver:
        return WEBDRIVER
    return FLOOD if flooding else ""


def _name(match: str) -> str:
    """The crawler's name as matched, without a version or URL tail."""
    name = re.sub(r"/\d.*$|/$", "", match).strip("+")
    return (name or "unnamed")[:40]
