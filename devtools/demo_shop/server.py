"""The demo shop's backend: pages, a checkout that takes stock, and the stock feed.

A shop on its own origin, the way a customer's would be: its pages load the SDK with
one script tag and talk to the engine only through it; its backend keeps the
inventory (the source of truth: a checkout takes from it, a purchase conversion never
changes the engine's stock) and confirms it to the engine with the site's secret key
(``PUT /api/v1/offers/stock``) at start, right after each checkout, and every minute.

Standard library only: :class:`http.server.ThreadingHTTPServer` and ``urllib``.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import secrets
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from devtools.demo_shop import pages
from devtools.demo_shop.catalog import BY_SKU, BY_SLUG, CURRENCY, PRODUCTS, Product

STATIC = Path(__file__).parent / "static"
FEED_INTERVAL_SECONDS = 60.0
RESTOCK_AFTER = timedelta(minutes=15)
MAX_QUANTITY = 10
STOCK_PATH = "/api/v1/offers/stock"

log = logging.getLogger("devtools.demo_shop")


class OutOfStock(Exception):
    def __init__(self, sku: str, available: int) -> None:
        super().__init__(f"{sku}: only {available} left")
        self.sku = sku
        self.available = available


class Inventory:
    """The shop's stock per SKU; a checkout takes all its lines or none.

    A product that sells out is restocked to its starting stock ``restock_after`` later,
    and says so (``restock_at``) until then.
    """

    def __init__(self, products: tuple[Product, ...], *, restock_after: timedelta = RESTOCK_AFTER) -> None:
        self._lock = threading.Lock()
        self._start = {product.sku: product.stock for product in products}
        self._stock = dict(self._start)
        self._restock_at: dict[str, datetime | None] = dict.fromkeys(self._start)
        self._restock_after = restock_after

    def take(self, lines: dict[str, int], *, now: datetime) -> dict[str, int]:
        """Remove ``lines`` (SKU -> quantity) from stock; raises :class:`OutOfStock`, taking nothing."""
        with self._lock:
            for sku, quantity in lines.items():
                if self._stock[sku] < quantity:
                    raise OutOfStock(sku, self._stock[sku])
            for sku, quantity in lines.items():
                self._stock[sku] -= quantity
                if self._stock[sku] == 0:
                    self._restock_at[sku] = now + self._restock_after
            return dict(self._stock)

    def restock_due(self, *, now: datetime) -> list[str]:
        """Refill what was due by ``now``; the SKUs refilled."""
        with self._lock:
            due = [sku for sku, at in self._restock_at.items() if at is not None and at <= now]
            for sku in due:
                self._stock[sku] = self._start[sku]
                self._restock_at[sku] = None
            return due

    def levels(self) -> dict[str, tuple[int, datetime | None]]:
        with self._lock:
            return {sku: (self._stock[sku], self._restock_at[sku]) for sku in self._stock}


class StockFeed:
    """Confirms the inventory to the engine: now, when poked, and every ``interval`` seconds.

    Each confirmation is one bulk ``PUT`` of every SKU (all or nothing on the engine's
    side). A failed one is retried with backoff (1 s, 2 s, ... up to ``interval``); the
    shop keeps selling meanwhile.
    """

    def __init__(
        self, *, engine: str, secret_key: str, inventory: Inventory, interval: float = FEED_INTERVAL_SECONDS
    ) -> None:
        self.engine = engine.rstrip("/")
        self._secret_key = secret_key
        self.inventory = inventory
        self.interval = interval
        self.confirmations = 0
        self.last_confirmed_at: datetime | None = None
        self.last_error = ""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stock-feed", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Confirm now (after a checkout), without waiting for the next minute."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            now = datetime.now(UTC)
            for sku in self.inventory.restock_due(now=now):
                log.info("restocked %s", sku)
            if self.confirm():
                failures = 0
                wait = self.interval
            else:
                failures += 1
                wait = min(self.interval, 2 ** (failures - 1))
            self._wake.wait(wait)

    def body(self) -> dict:
        return {
            "offers": [
                {"sku": sku, "stock_remaining": stock, "restock_at": restock_at.isoformat() if restock_at else None}
                for sku, (stock, restock_at) in sorted(self.inventory.levels().items())
            ]
        }

    def confirm(self) -> bool:
        """One bulk confirmation; True when the engine acknowledged it."""
        request = urllib.request.Request(
            self.engine + STOCK_PATH,
            data=json.dumps(self.body()).encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {self._secret_key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the engine's URL)
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            self.last_error = f"{error.code} {error.read()[:300].decode(errors='replace')}"
        except (OSError, ValueError) as error:
            self.last_error = str(error)
        else:
            self.confirmations += 1
            self.last_confirmed_at = datetime.now(UTC)
            if self.last_error or self.confirmations == 1:
                levels = ", ".join(f"{item['sku']} {item['stock_remaining']}" for item in answer.get("offers", []))
                log.info("stock confirmed to the engine: %s", levels)
            self.last_error = ""
            return True
        log.warning("stock feed: %s", self.last_error)
        return False


@dataclass(frozen=True)
class Deal:
    percent: Decimal
    ends_at: datetime


class DemoShop:
    """The demo shop: ``start()`` serves it on ``host:port`` (0: a free port) until ``stop()``.

    ``deals`` are the discounts the shop honours at checkout until their end (SKU ->
    :class:`Deal`); they mirror the engine's approved offers.
    """

    def __init__(
        self,
        *,
        engine: str,
        site_key: str,
        secret_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        deals: dict[str, Deal] | None = None,
        feed_interval: float = FEED_INTERVAL_SECONDS,
        products: tuple[Product, ...] = PRODUCTS,
    ) -> None:
        self.engine = engine.rstrip("/")
        self.site_key = site_key
        self.products = products
        self.deals = deals or {}
        self.inventory = Inventory(products)
        self.feed = StockFeed(
            engine=self.engine, secret_key=secret_key, inventory=self.inventory, interval=feed_interval
        )
        self.orders: list[dict] = []
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

    def start(self) -> DemoShop:
        shop = self

        class Handler(ShopHandler):
            pass

        Handler.shop = shop
        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-shop", daemon=True)
        self._thread.start()
        self.feed.start()
        return self

    def stop(self) -> None:
        self.feed.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> DemoShop:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # What the pages and the checkout need ------------------------------------------

    def deal_of(self, product: Product, *, now: datetime) -> Deal | None:
        deal = self.deals.get(product.sku)
        return deal if deal is not None and now < deal.ends_at else None

    def price_of(self, product: Product, *, now: datetime) -> Decimal:
        deal = self.deal_of(product, now=now)
        return product.price_with(deal.percent) if deal else product.price

    def checkout(self, items: list[dict], *, now: datetime) -> dict:
        """Price the lines, take them from stock and record the order; raises ValueError or OutOfStock."""
        lines: dict[str, int] = {}
        for item in items:
            sku, quantity = item.get("sku"), item.get("quantity")
            if sku not in BY_SKU or BY_SKU[sku] not in self.products:
                raise ValueError(f"unknown product {sku!r}")
            if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= MAX_QUANTITY:
                raise ValueError(f"quantity of {sku} must be 1 to {MAX_QUANTITY}")
            lines[sku] = lines.get(sku, 0) + quantity
        if not lines:
            raise ValueError("the cart is empty")
        self.inventory.take(lines, now=now)
        priced = [
            {
                "sku": sku,
                "name": BY_SKU[sku].name,
                "quantity": quantity,
                "unit_price": str(self.price_of(BY_SKU[sku], now=now)),
                "total": str(self.price_of(BY_SKU[sku], now=now) * quantity),
            }
            for sku, quantity in lines.items()
        ]
        main = max(priced, key=lambda line: Decimal(line["total"]))
        order = {
            "order_id": "HA-" + secrets.token_hex(3).upper(),
            "lines": priced,
            "total": str(sum(Decimal(line["total"]) for line in priced)),
            "currency": CURRENCY,
            # One purchase per order; the product it is about is its largest line.
            "product": {"sku": main["sku"], "name": main["name"], "quantity": main["quantity"]},
            "placed_at": now.isoformat(),
        }
        self.orders.append(order)
        self.feed.poke()
        return order


class ShopHandler(BaseHTTPRequestHandler):
    shop: DemoShop
    server_version = "DemoShop/1"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = urlsplit(self.path).path
        now = datetime.now(UTC)
        context = pages.Context(shop=self.shop, now=now)
        if path == "/healthz":
            return self.send_body(b"ok", "text/plain; charset=utf-8")
        if path == "/":
            return self.send_page(pages.landing(context))
        if path.startswith("/products/"):
            product = BY_SLUG.get(path.removeprefix("/products/").strip("/"))
            if product is not None and product in self.shop.products:
                return self.send_page(pages.product(context, product))
        if path == "/cart":
            return self.send_page(pages.cart(context))
        if path == "/checkout":
            return self.send_page(pages.checkout(context))
        if path == "/api/stock":
            levels = self.shop.inventory.levels()
            return self.send_json({sku: stock for sku, (stock, _) in levels.items()})
        if path.startswith("/static/"):
            return self.send_static(path.removeprefix("/static/"))
        return self.send_page(pages.not_found(context), HTTPStatus.NOT_FOUND)

    def do_POST(self):  # noqa: N802
        if urlsplit(self.path).path != "/api/checkout":
            return self.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(min(length, 64_000)) or b"{}")
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise ValueError("items must be a list")
            order = self.shop.checkout(items, now=datetime.now(UTC))
        except OutOfStock as error:
            return self.send_json(
                {"error": "out_of_stock", "sku": error.sku, "available": error.available}, HTTPStatus.CONFLICT
            )
        except (ValueError, AttributeError) as error:
            return self.send_json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
        log.info("order %s: %s %s", order["order_id"], order["total"], order["currency"])
        return self.send_json(order, HTTPStatus.CREATED)

    def send_body(self, body: bytes, content_type: str, status: int = HTTPStatus.OK, cache: str = "no-store"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_page(self, html: str, status: int = HTTPStatus.OK):
        self.send_body(html.encode(), "text/html; charset=utf-8", status)

    def send_json(self, data, status: int = HTTPStatus.OK):
        self.send_body(json.dumps(data).encode(), "application/json", status)

    def send_static(self, name: str):
        path = (STATIC / name).resolve()
        if STATIC.resolve() not in path.parents or not path.is_file():
            return self.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript", "image/svg+xml"):
            content_type += "; charset=utf-8"
        self.send_body(path.read_bytes(), content_type, cache="max-age=300")
