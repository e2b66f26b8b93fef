"""The demo shop's backend: pages with the SDK markup, a checkout that takes stock, the stock feed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.config_cache import VersionedCache
from devtools.demo_content import demo_content_build, demo_site_ensure
from devtools.demo_shop import Deal, DemoShop, Inventory, OutOfStock
from devtools.demo_shop.__main__ import deal_arg
from devtools.demo_shop.catalog import AURORA, NOVA, PRODUCTS
from journeys.services.sites import site_secret_rotate
from personalization.models import Offer
from tests.processes import wait_for

NOW = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing answers


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a local test server)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture
def shop():
    deals = {AURORA.sku: Deal(percent=Decimal("20"), ends_at=datetime.now(UTC) + timedelta(hours=5))}
    with DemoShop(
        engine=UNREACHABLE, site_key="pk_test", secret_key="sk_test", deals=deals, feed_interval=3600
    ) as shop:
        yield shop


def test_inventory_takes_all_lines_or_none():
    inventory = Inventory(PRODUCTS)

    with pytest.raises(OutOfStock) as refused:
        inventory.take({NOVA.sku: 2, AURORA.sku: 8}, now=NOW)

    assert (refused.value.sku, refused.value.available) == (AURORA.sku, 7)
    assert inventory.levels()[NOVA.sku] == (36, None)
    assert inventory.take({AURORA.sku: 2}, now=NOW)[AURORA.sku] == 5


def test_a_sold_out_product_says_when_it_comes_back_and_is_restocked_then():
    inventory = Inventory(PRODUCTS, restock_after=timedelta(minutes=15))
    inventory.take({AURORA.sku: 7}, now=NOW)

    assert inventory.levels()[AURORA.sku] == (0, NOW + timedelta(minutes=15))
    assert inventory.restock_due(now=NOW + timedelta(minutes=14)) == []
    assert inventory.restock_due(now=NOW + timedelta(minutes=15)) == [AURORA.sku]
    assert inventory.levels()[AURORA.sku] == (7, None)


def test_pages_load_the_sdk_with_the_public_key_and_hold_default_content(shop):
    status, landing = get(shop.url + "/")
    assert status == 200
    assert f'<script src="{UNREACHABLE}/sdk/v1/journey.js" data-site-key="pk_test" async></script>' in landing
    assert 'data-journey-slot="hero"' in landing
    assert '<h1 data-journey-field="headline">Aurora Headphones</h1>' in landing
    assert "sk_test" not in landing

    status, product = get(shop.url + "/products/aurora-headphones")
    assert status == 200
    for markup in (
        'data-journey-slot="hero"',
        'data-journey-slot="cta" data-journey-field="cta">Add to cart</button>',
        'data-journey-slot="offer_banner"',
        '<p class="cue cue-stock" data-journey-cue="low_stock" data-journey-offer="AUR-H1"></p>',
        '<p class="cue cue-deadline" data-journey-cue="offer_deadline" data-journey-offer="AUR-H1"></p>',
        '<span class="now">€119.20</span> <s class="was">€149.00</s>',
    ):
        assert markup in product
    assert get(shop.url + "/products/nova-earbuds")[0] == 200
    assert get(shop.url + "/products/nothing")[0] == 404
    assert get(shop.url + "/static/shop.js")[0] == 200
    assert get(shop.url + "/static/../server.py")[0] == 404


def test_checkout_prices_the_deal_takes_the_stock_and_refuses_what_is_not_there(shop):
    status, order = post(shop.url + "/api/checkout", {"items": [{"sku": "AUR-H1", "quantity": 2}]})

    assert status == 201
    assert (order["total"], order["currency"], order["product"]) == (
        "238.40",
        "EUR",
        {"sku": "AUR-H1", "name": "Aurora Headphones", "quantity": 2},
    )
    assert shop.inventory.levels()[AURORA.sku] == (5, None)

    status, refused = post(
        shop.url + "/api/checkout", {"items": [{"sku": "NOV-E2", "quantity": 1}, {"sku": "AUR-H1", "quantity": 6}]}
    )
    assert (status, refused) == (409, {"error": "out_of_stock", "sku": "AUR-H1", "available": 5})
    assert shop.inventory.levels()[NOVA.sku] == (36, None)

    assert post(shop.url + "/api/checkout", {"items": [{"sku": "AUR-H1", "quantity": 0}]})[0] == 400
    assert post(shop.url + "/api/checkout", {"items": [{"sku": "XX", "quantity": 1}]})[0] == 400
    assert post(shop.url + "/api/checkout", {"items": []})[0] == 400
    assert shop.inventory.levels()[AURORA.sku] == (5, None)


def test_an_ended_deal_is_charged_at_the_list_price():
    deals = {AURORA.sku: Deal(percent=Decimal("20"), ends_at=datetime.now(UTC) - timedelta(seconds=1))}
    with DemoShop(engine=UNREACHABLE, site_key="pk", secret_key="sk", deals=deals, feed_interval=3600) as shop:
        status, order = post(shop.url + "/api/checkout", {"items": [{"sku": "AUR-H1", "quantity": 1}]})

    assert (status, order["total"]) == (201, "149.00")


def test_the_deal_argument_names_sku_percent_and_an_absolute_end():
    assert deal_arg("AUR-H1:20:2026-12-07T15:00:00+00:00") == (
        "AUR-H1",
        Deal(percent=Decimal("20"), ends_at=datetime(2026, 12, 7, 15, tzinfo=UTC)),
    )
    with pytest.raises(Exception, match="needs a time zone"):
        deal_arg("AUR-H1:20:2026-12-07T15:00:00")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_stock_feed_confirms_the_shops_stock_with_the_secret_key(live_server, django_user_model):
    admin = django_user_model.objects.create_superuser("admin", password="pw-admin-12345")
    site = demo_site_ensure(origins=["http://127.0.0.1:8001"])
    demo_content_build(site=site, approver=admin, shop_url="http://127.0.0.1:8001", history_sessions=0, log=print)
    VersionedCache.clear_all()
    before = Offer.objects.get(site=site, sku=AURORA.sku).stock_updated_at
    secret_key = site_secret_rotate(site=site)

    with DemoShop(engine=live_server.url, site_key=site.public_key, secret_key=secret_key, feed_interval=3600) as shop:
        confirmed = wait_for(lambda: shop.feed.confirmations == 1, timeout=20)
        assert confirmed, shop.feed.last_error
        aurora = Offer.objects.get(site=site, sku=AURORA.sku)
        assert aurora.stock_remaining == 7
        assert aurora.stock_updated_at > before
        assert aurora.stock_confirmed_by == f"stock feed ({secret_key[:7]}…)"

        status, _ = post(shop.url + "/api/checkout", {"items": [{"sku": "AUR-H1", "quantity": 1}]})
        assert status == 201
        assert wait_for(lambda: shop.feed.confirmations == 2, timeout=20), shop.feed.last_error

    stock = {offer.sku: offer.stock_remaining for offer in Offer.objects.filter(site=site)}
    assert stock == {"AUR-H1": 6, "NOV-E2": 36, "LUM-S3": 18}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_stock_feed_with_the_public_key_is_refused_and_changes_nothing(live_server, django_user_model):
    admin = django_user_model.objects.create_superuser("admin", password="pw-admin-12345")
    site = demo_site_ensure(origins=["http://127.0.0.1:8001"])
    demo_content_build(site=site, approver=admin, shop_url="http://127.0.0.1:8001", history_sessions=0, log=print)
    before = list(Offer.objects.filter(site=site).order_by("id").values())

    with DemoShop(
        engine=live_server.url, site_key=site.public_key, secret_key=site.public_key, feed_interval=3600
    ) as shop:
        assert wait_for(lambda: shop.feed.last_error != "", timeout=20)

    assert shop.feed.last_error.startswith("403 ")
    assert "secret_key_required" in shop.feed.last_error
    assert list(Offer.objects.filter(site=site).order_by("id").values()) == before
