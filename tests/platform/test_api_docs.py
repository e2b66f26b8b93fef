"""The API docs (Swagger UI at /api/docs/, ReDoc at /api/redoc/) are served from the app's own
static files (drf-spectacular-sidecar), so they work where no CDN is reachable."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_page_references_only_local_static_assets_and_they_are_served(url):
    client = Client()

    response = client.get(url)

    assert response.status_code == 200
    page = response.content.decode()
    assets = ASSET.findall(page)
    assert assets, page
    assert [asset for asset in assets if not asset.startswith("/static/drf_spectacular_sidecar/")] == []
    assert re.findall(r"https?://[^\s\"'<]+", page) == []
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
