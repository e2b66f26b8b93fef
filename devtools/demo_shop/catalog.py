"""The demo shop's products: what the shop sells and what the engine knows as offers.

The shop's backend is the source of truth for prices and stock; the demo content
creates one engine offer per product with the same SKU, name and price, and the
shop's stock feed keeps the engine's stock confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

CURRENCY = "EUR"


@dataclass(frozen=True)
class Product:
    sku: str
    slug: str
    name: str
    price: Decimal
    tagline: str
    description: str
    image: str  # a path on the shop's own origin
    stock: int  # what the shop has when it starts
    deal_percent: Decimal = Decimal("0")  # the launch deal, while the engine's offer says it runs
    features: tuple[str, ...] = ()

    def price_with(self, percent: Decimal) -> Decimal:
        return (self.price * (1 - percent / 100)).quantize(Decimal("0.01"))


AURORA = Product(
    sku="AUR-H1",
    slug="aurora-headphones",
    name="Aurora Headphones",
    price=Decimal("149.00"),
    tagline="Wireless over-ear headphones with adaptive noise cancelling",
    description=(
        "Aurora shuts out the train, the open-plan office and the café, then lasts 40 hours on one charge. "
        "Memory-foam cushions, a fold-flat frame and a case that fits any bag."
    ),
    image="/static/img/aurora.svg",
    stock=7,
    deal_percent=Decimal("20"),
    features=(
        "Adaptive noise cancelling",
        "40 h battery, 10 min = 5 h",
        "Multipoint Bluetooth 5.3",
        "Fold-flat, 250 g",
    ),
)
NOVA = Product(
    sku="NOV-E2",
    slug="nova-earbuds",
    name="Nova Earbuds",
    price=Decimal("79.00"),
    tagline="True wireless earbuds that disappear in your ears",
    description="Six hours of music per charge, 24 more in the pocket-size case, and sweat-proof for the gym.",
    image="/static/img/nova.svg",
    stock=36,
    features=("6 h + 24 h with the case", "IPX5 sweat-proof", "Touch controls"),
)
LUMEN = Product(
    sku="LUM-S3",
    slug="lumen-speaker",
    name="Lumen Speaker",
    price=Decimal("99.00"),
    tagline="A room-filling speaker with a soft ambient light",
    description="360° sound, a warm light ring that follows the music, and 15 hours away from the wall.",
    image="/static/img/lumen.svg",
    stock=18,
    features=("360° sound", "15 h battery", "Ambient light ring"),
)

PRODUCTS: tuple[Product, ...] = (AURORA, NOVA, LUMEN)
BY_SKU = {product.sku: product for product in PRODUCTS}
BY_SLUG = {product.slug: product for product in PRODUCTS}
