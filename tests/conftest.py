"""Tests run on real PostgreSQL and Redis: the servers named by DATABASE_URL and
REDIS_URL, or the embedded ones. Celery tasks run eagerly here, except in tests
marked ``worker``, which start a real worker process."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from analytics import monitor
from config.celery import app as celery_app
from core.config_cache import VersionedCache
from journeys.services.sites import site_create


@pytest.fixture(autouse=True)
def _fresh_cache_and_eager_tasks():
    """Each test starts with empty Redis cache and process caches, tasks eager.

    Live-monitor events an earlier test queued are sent first: the publisher thread sends
    in batches, and one sent after the clear would number into this test's feed.
    """
    monitor.monitor_flush(10)
    cache.clear()
    VersionedCache.clear_all()
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    VersionedCache.clear_all()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Staff users are made in many tests; the production hasher would cost most of their time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def site(db):
    return site_create(name="Shop", domain="shop.example")


@pytest.fixture
def other_site(db):
    return site_create(name="Other", domain="other.example")


@pytest.fixture
def client_for():
    def make(site) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_X_SITE_KEY=site.public_key)
        return client

    return make


@pytest.fixture
def api(site, client_for) -> APIClient:
    """An API client holding the test site's public key."""
    return client_for(site)


@pytest.fixture
def staff_user(db, django_user_model):
    return django_user_model.objects.create_user("staff", password="pw-staff-123", is_staff=True)


@pytest.fixture
def staff_api(site, staff_user) -> APIClient:
    """A staff client (token auth) that names the test site with X-Site-Key."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=staff_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_X_SITE_KEY=site.public_key)
    return client


def token_client_for(user):
    """``make(site)``: a token client of ``user`` naming ``site`` (or no site, with None)."""
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=user)

    def make(site) -> APIClient:
        client = APIClient()
        headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
        if site is not None:
            headers["HTTP_X_SITE_KEY"] = site.public_key
        client.credentials(**headers)
        return client

    return make


@pytest.fixture
def staff_client_for(staff_user):
    """``staff_client_for(site)``: a staff token client naming ``site`` (or no site, with None)."""
    return token_client_for(staff_user)


@pytest.fixture
def privacy_officer(db, django_user_model):
    """A staff user in the "Privacy officers" role: the one that may export and erase visitors."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("pia", password="pw-pia-12345", is_staff=True)
    user.groups.add(Group.objects.get(name="Privacy officers"))
    return user


@pytest.fixture
def privacy_client_for(privacy_officer):
    """``privacy_client_for(site)``: a privacy officer's token client naming ``site`` (or no site, with None)."""
    return token_client_for(privacy_officer)


@pytest.fixture
def privacy_api(site, privacy_client_for) -> APIClient:
    """A privacy officer's client (token auth) that names the test site with X-Site-Key."""
    return privacy_client_for(site)
