"""Setting a site up: origins, keys, the create_site command, the site admin, and the SDK file."""

from __future__ import annotations

import gzip
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from core.hashing import secret_key_hash
from journeys.models import Site
from journeys.sdk import SDK_SOURCE
from journeys.services.sites import origin_normalize

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example:443/", "https://shop.example"),
        ("http://127.0.0.1:8001", "http://127.0.0.1:8001"),
        ("http://[::1]:8001", "http://[::1]:8001"),
    ],
)
def test_origins_are_stored_as_browsers_send_them(value, origin):
    assert origin_normalize(value) == origin


@pytest.mark.parametrize(
    "value", ["shop.example", "ftp://shop.example", "https://shop.example/path", "https://*.shop.example", "https://"]
)
def test_anything_but_an_http_origin_is_refused(value):
    with pytest.raises(ValidationError):
        origin_normalize(value)


def test_create_site_prints_the_secret_once_and_the_public_key_last():
    out = io.StringIO()

    call_command(
        "create_site",
        "Corner Shop",
        "--domain",
        "corner.example",
        "--allowed-origin",
        "https://corner.example",
        "--allowed-origin",
        "http://localhost:3000",
        stdout=out,
    )

    lines = out.getvalue().splitlines()
    site = Site.objects.get(domain="corner.example")
    secret = lines[2].rsplit(" ", 1)[1]
    assert lines == [
        f"Created site Corner Shop (corner.example), id {site.pk}.",
        "Allowed origins: https://corner.example, http://localhost:3000",
        f"Secret key (shown once; for the shop's backend only): {secret}",
        site.public_key,
    ]
    assert site.secret_key_hash == secret_key_hash(secret)


def test_create_site_defaults_to_the_domain_over_https():
    call_command("create_site", "Plain", "--domain", "plain.example", stdout=io.StringIO())

    assert Site.objects.get(domain="plain.example").allowed_origins == ["https://plain.example"]


def test_create_site_refuses_a_bad_origin_and_creates_nothing():
    with pytest.raises(CommandError, match="'shop.example/x' is not an origin"):
        call_command("create_site", "Bad", "--domain", "bad.example", "--allowed-origin", "shop.example/x")

    assert not Site.objects.filter(domain="bad.example").exists()


def test_admin_edits_origins_normalized_and_refuses_a_bad_one(site, admin_user):
    client = Client()
    client.force_login(admin_user)
    url = reverse("admin:journeys_site_change", args=[site.pk])
    form = {"name": site.name, "domain": site.domain, "is_active": "on"}

    saved = client.post(url, {**form, "allowed_origins": "HTTPS://Shop.Example, http://localhost:8001/"})
    site.refresh_from_db()
    refused = client.post(url, {**form, "allowed_origins": "https://shop.example,javascript:alert(1)"})

    assert saved.status_code == 302
    assert site.allowed_origins == ["https://shop.example", "http://localhost:8001"]
    assert refused.status_code == 200
    assert "is not an origin" in refused.content.decode()
    site.refresh_from_db()
    assert site.allowed_origins == ["https://shop.example", "http://localhost:8001"]


def test_admin_rotates_the_secret_key_and_shows_it_once(site, admin_user):
    client = Client()
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:journeys_site_changelist"),
        {"action": "rotate_secret_key", "_selected_action": [site.pk]},
        follow=True,
    )

    (message,) = [str(m) for m in response.context["messages"]]
    secret = message.rsplit(" ", 1)[1]
    site.refresh_from_db()
    assert message.startswith("New secret key of Shop, shown only now")
    assert secret in response.content.decode()
    assert site.secret_key_hash == secret_key_hash(secret)
    later = client.get(reverse("admin:journeys_site_change", args=[site.pk])).content.decode()
    assert secret not in later and site.secret_key_hint in later


def test_sdk_is_served_with_a_long_cache_and_gzipped(client):
    source = SDK_SOURCE.read_bytes()

    plain = client.get("/sdk/v1/journey.js")
    zipped = client.get("/sdk/v1/journey.js", HTTP_ACCEPT_ENCODING="gzip, br")
    revalidated = client.get("/sdk/v1/journey.js", HTTP_IF_NONE_MATCH=plain["ETag"])

    assert plain.status_code == 200
    assert plain.content == source
    assert plain["Content-Type"] == "text/javascript; charset=utf-8"
    assert plain["Cache-Control"] == "public, max-age=86400, stale-while-revalidate=604800"
    assert plain["X-Content-Type-Options"] == "nosniff"
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == source
    assert "Accept-Encoding" in zipped["Vary"]
    assert revalidated.status_code == 304
    assert client.post("/sdk/v1/journey.js").status_code == 405
