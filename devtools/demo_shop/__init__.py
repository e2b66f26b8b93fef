"""A small shop on its own origin that uses Journey Engine only through the browser SDK.

``python -m devtools.demo_shop --engine URL --site-key pk_... --secret-key sk_... --port 8001``,
or from Python: ``with DemoShop(engine=..., site_key=..., secret_key=...) as shop: shop.url``.
"""

from devtools.demo_shop.server import Deal, DemoShop, Inventory, OutOfStock, StockFeed

__all__ = ["Deal", "DemoShop", "Inventory", "OutOfStock", "StockFeed"]
