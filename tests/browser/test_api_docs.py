"""The API docs in headless Chromium with every other host unreachable: Swagger UI and ReDoc
load from the app's own static files and show every operation of the schema."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


# The ReDoc bundle's "API docs by Redocly" link shows a logo from Redocly's CDN; the page works
# without it (the image is just missing), and ReDoc has no setting to leave it out.
REDOC_ATTRIBUTION_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def operation_count() -> int:
    paths = Client().get("/api/schema/", {"format": "json"}).json()["paths"]
    return sum(len(methods) for methods in paths.values())


def offline(page, origin: str) -> list[str]:
    """Abort every request to another origin, as where no CDN is reachable; the list of them."""
    elsewhere: list[str] = []

    def route(route) -> None:
        parts = urlsplit(route.request.url)
        if f"{parts.scheme}://{parts.netloc}" == origin:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return elsewhere


@pytest.mark.parametrize(
    ("url", "operation_selector", "name"),
    [
        ("/api/docs/", ".opblock", "api-docs-swagger"),
        ("/api/redoc/", "[data-section-id^='operation/']", "api-docs-redoc"),
    ],
)
def test_docs_show_every_operation_without_another_host(
    new_page, asgi_server, screenshot, url, operation_selector, name
):
    page = new_page()
    elsewhere = offline(page, asgi_server.url)

    response = page.goto(url)
    page.wait_for_function(
        "([selector, count]) => document.querySelectorAll(selector).length >= count",
        arg=[operation_selector, operation_count()],
    )
    screenshot(page, name)

    assert response.status == 200
    assert page.locator(operation_selector).count() == operation_count()
    assert [request for request in elsewhere if request != REDOC_ATTRIBUTION_LOGO] == []
