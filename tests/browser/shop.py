"""A shop on its own origin for the SDK's browser tests.

``shop`` (function): a :class:`devtools.pages.PageServer` on a free 127.0.0.1 port:
another origin than the engine's ``asgi_server``, as a real shop's pages are. A test
registers its pages with ``shop.page(path, html)``, which answers the page's URL;
``sdk_page`` writes a page that loads the SDK from the engine with one script tag. The
server lives for the whole run (its origin stays the same, so sites created in different
tests list the same origin); the pages are cleared before each test.

Also the shop's configuration in the engine, made through the services as staff would:
``shop_site`` (a site whose allowed origin is the shop's), ``people`` (a marketer and an
approver) and ``slot_with_variants`` (the approval flow of
:mod:`tests.personalization.helpers`: the marketer creates and submits, the approver
approves).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.pages import PageServer, sdk_page  # noqa: F401 (sdk_page: for the tests)
from journeys.services.sites import site_create
from personalization.models import ContentVariant, Slot
from tests.personalization.helpers import approved, created, make_people


@pytest.fixture(scope="session")
def shop_server() -> Iterator[PageServer]:
    with PageServer() as shop:
        yield shop


@pytest.fixture
def shop(shop_server: PageServer) -> PageServer:
    """The shop, with no pages yet."""
    shop_server.pages.clear()
    return shop_server


@pytest.fixture
def sdk_src(asgi_server) -> str:
    """The SDK's URL on the engine: the script tag's ``src``."""
    return f"{asgi_server.url}/sdk/v1/journey.js"


@pytest.fixture
def shop_site(shop: PageServer, transactional_db):
    """The shop's site in the engine: its pages on the shop's origin may call the API."""
    return site_create(name="Shop", domain="shop.example", allowed_origins=[shop.origin])


@pytest.fixture
def people(transactional_db, django_user_model):
    """(marketer, approver): who submits and who approves."""
    return make_people(django_user_model)


def slot_with_variants(site, people, key: str, variants: dict[str, dict]) -> dict[str, ContentVariant]:
    """A slot and its live variants: ``{variant key: {"payload": {...}, other fields...}}``."""
    slot = Slot.objects.create(site=site, key=key, name=key.title())
    made = {}
    for variant_key, fields in variants.items():
        fields = dict(fields)
        variant = ContentVariant(
            site=site, slot=slot, key=variant_key, name=variant_key, payload=fields.pop("payload"), **fields
        )
        made[variant_key] = approved(created(variant, people), people)
    return made
