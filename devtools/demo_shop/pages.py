"""The demo shop's pages: server-rendered HTML with the SDK's declarative markup.

Every slot holds its default content (what a visitor sees when the engine is down, or
before it answers); the SDK replaces the fields it is given, as text. Cue elements are
empty by default: a cue shows only when the engine validated it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING

from devtools.demo_shop.catalog import AURORA, CURRENCY, Product

if TYPE_CHECKING:
    from devtools.demo_shop.server import DemoShop

BRAND = "Halcyon Audio"
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


@dataclass(frozen=True)
class Context:
    shop: DemoShop
    now: datetime


def money(amount: Decimal, currency: str = CURRENCY) -> str:
    return f"{SYMBOLS.get(currency, currency + ' ')}{amount:,.2f}"


def percent(value: Decimal) -> str:
    """20.00 -> "20", 12.50 -> "12.5"."""
    return f"{value.normalize():f}"


def _catalog_json(context: Context) -> str:
    data = {
        product.sku: {
            "name": product.name,
            "slug": product.slug,
            "image": product.image,
            "price": str(context.shop.price_of(product, now=context.now)),
            "list_price": str(product.price),
            "currency": CURRENCY,
        }
        for product in context.shop.products
    }
    # Safe inside <script>: no "</script>" can appear.
    return json.dumps(data).replace("<", "\\u003c")


def _feed_status(context: Context) -> str:
    feed = context.shop.feed
    if feed.last_confirmed_at is None:
        return "stock not confirmed to the engine yet" + (f" ({escape(feed.last_error)})" if feed.last_error else "")
    seconds = int((context.now - feed.last_confirmed_at).total_seconds())
    return f"stock confirmed to the engine {max(0, seconds)} s ago"


def layout(context: Context, *, title: str, page: str, body: str) -> str:
    shop = context.shop
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · {BRAND}</title>
<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/shop.css">
<script src="{escape(shop.engine)}/sdk/v1/journey.js" data-site-key="{escape(shop.site_key)}" async></script>
<script src="/static/shop.js" defer></script>
</head>
<body data-page="{page}">
<header class="site-header">
  <div class="wrap">
    <a class="brand" href="/"><span class="brand-mark" aria-hidden="true"></span>{BRAND}</a>
    <nav>
      <a href="/">Shop</a>
      <a href="/products/{AURORA.slug}">Aurora</a>
      <a class="cart-link" href="/cart">Cart <span class="cart-count" data-cart-count>0</span></a>
    </nav>
  </div>
</header>
<main class="wrap">
{body}
</main>
<footer class="site-footer">
  <div class="wrap">
    <p>A demo storefront on its own origin. Content, experiments and urgency cues come from
    Journey Engine at <code>{escape(shop.engine)}</code> through one script tag; prices and stock
    come from this shop's backend.</p>
    <p class="feed" data-feed-status>{_feed_status(context)}</p>
  </div>
</footer>
<script type="application/json" id="shop-catalog">{_catalog_json(context)}</script>
</body>
</html>
"""


def price_html(context: Context, product: Product) -> str:
    deal = context.shop.deal_of(product, now=context.now)
    if deal is None:
        return f'<span class="now">{money(product.price)}</span>'
    return (
        f'<span class="now">{money(product.price_with(deal.percent))}</span> '
        f'<s class="was">{money(product.price)}</s> <span class="badge">−{percent(deal.percent)}%</span>'
    )


def landing(context: Context) -> str:
    cards = "\n".join(
        f"""    <a class="card" href="/products/{product.slug}">
      <div class="card-art"><img src="{product.image}" alt="{escape(product.name)}"></div>
      <div class="card-body">
        <h3>{escape(product.name)}</h3>
        <p>{escape(product.tagline)}</p>
        <p class="price">{price_html(context, product)}</p>
        {_cues(product, ("low_stock", "offer_deadline")) if product.sku == AURORA.sku else ""}
      </div>
    </a>"""
        for product in context.shop.products
    )
    body = f"""<section class="hero" data-journey-slot="hero">
  <div class="hero-copy">
    <p class="eyebrow">New from {BRAND}</p>
    <h1 data-journey-field="headline">{escape(AURORA.name)}</h1>
    <p class="lede" data-journey-field="body">Adaptive noise cancelling, 40 hours of battery and a fold-flat frame
    that fits any bag.</p>
    <a class="button primary big" href="/products/{AURORA.slug}" data-journey-field="cta">Shop Aurora</a>
  </div>
  <div class="hero-art"><img data-journey-field="image" src="{AURORA.image}" alt="{escape(AURORA.name)}"></div>
</section>
<section class="collection">
  <h2>The collection</h2>
  <div class="grid">
{cards}
  </div>
</section>
{_promises()}"""
    return layout(context, title="Sound, without the noise", page="landing", body=body)


def _promises() -> str:
    return """<section class="promises">
  <div><strong>Free shipping</strong><span>On every order, delivered in 1-3 days.</span></div>
  <div><strong>30-day returns</strong><span>Changed your mind? Send it back, free.</span></div>
  <div><strong>2-year warranty</strong><span>Repairs or a replacement, no questions.</span></div>
</section>"""


def _deal_banner(context: Context, product: Product) -> str:
    deal = context.shop.deal_of(product, now=context.now)
    if deal is not None:
        headline = f"Launch deal: {product.name} {percent(deal.percent)}% off"
        text = f"{money(product.price)} → {money(product.price_with(deal.percent))} until the deal ends."
    else:
        headline = f"{product.name}: free shipping"
        text = "Free shipping and 30-day returns."
    return f"""<aside class="deal" data-journey-slot="offer_banner">
  <p class="deal-headline" data-journey-field="headline">{escape(headline)}</p>
  <p class="deal-body" data-journey-field="body">{escape(text)}</p>
  {_cues(product, ("low_stock", "offer_deadline", "social_proof_views"))}
</aside>"""


CUE_CLASSES = {"low_stock": "stock", "offer_deadline": "deadline", "social_proof_views": "views"}


def _cues(product: Product, triggers: tuple[str, ...]) -> str:
    """Empty cue elements: the SDK shows in them the cues the engine validated, and nothing else.

    Every page whose decisions may carry cues has them, so each cue the engine records as
    shown (its claims ledger) is on the visitor's screen.
    """
    items = "".join(
        f'<p class="cue cue-{CUE_CLASSES[trigger]}" data-journey-cue="{trigger}" '
        f'data-journey-offer="{product.sku}"></p>'
        for trigger in triggers
    )
    return f'<div class="cues">{items}</div>'


def product(context: Context, item: Product) -> str:
    # The Aurora page is the engine's stage: its hero is a slot, with the deal banner and
    # its cues; every product page has the add-to-cart button as the ``cta`` slot.
    featured = item.sku == AURORA.sku
    slot = ' data-journey-slot="hero"' if featured else ""
    features = "".join(f"<li>{escape(feature)}</li>" for feature in item.features)
    body = f"""<nav class="crumbs"><a href="/">Shop</a><span>/</span>{escape(item.name)}</nav>
<article class="product" data-sku="{item.sku}"{slot}>
  <div class="product-art"><img data-journey-field="image" src="{item.image}" alt="{escape(item.name)}"></div>
  <div class="product-info">
    <p class="eyebrow">{escape(item.name)}</p>
    <h1 data-journey-field="headline">{escape(item.name if featured else item.tagline)}</h1>
    <p class="lede" data-journey-field="body">{escape(item.description)}</p>
    <p class="price big">{price_html(context, item)}</p>
    <div class="buy">
      <button class="button primary big" type="button" data-add-to-cart="{item.sku}"
        data-journey-slot="cta" data-journey-field="cta">Add to cart</button>
      <a class="button ghost" href="/cart">View cart</a>
    </div>
    <p class="toast" data-toast hidden></p>
    {_deal_banner(context, item) if featured else ""}
    <ul class="features">{features}</ul>
  </div>
</article>
{_promises()}"""
    return layout(context, title=item.name, page="product", body=body)


def cart(context: Context) -> str:
    body = f"""<h1 class="page-title">Your cart</h1>
<div class="cart">
  <div class="panel cart-lines" data-cart-lines><p class="empty">Your cart is empty.</p></div>
  <aside class="panel summary">
    <dl>
      <dt>Subtotal</dt><dd data-cart-total>€0.00</dd>
      <dt>Shipping</dt><dd>Free</dd>
    </dl>
    <a class="button primary big" href="/checkout" data-checkout-link>Checkout</a>
    {_cues(AURORA, ("low_stock", "offer_deadline"))}
  </aside>
</div>"""
    return layout(context, title="Cart", page="cart", body=body)


def checkout(context: Context) -> str:
    body = f"""<h1 class="page-title">Checkout</h1>
<div class="checkout" data-checkout>
  <form class="panel" data-checkout-form>
    <h2>Contact</h2>
    <label>Name <input name="name" value="Alex Demo" autocomplete="name"></label>
    <label>E-mail <input type="email" name="email" value="alex@example.com" autocomplete="email"></label>
    <h2>Payment</h2>
    <p class="note">A demo: no payment is taken. Placing the order takes the items from this shop's stock,
    confirms the new stock to Journey Engine, and records the purchase with <code>journey.convert()</code>.</p>
    <button class="button primary big" type="submit" data-place-order>Place order</button>
    <p class="error" data-checkout-error hidden></p>
  </form>
  <aside class="panel summary">
    <h2>Order summary</h2>
    <div data-cart-lines class="compact"><p class="empty">Your cart is empty.</p></div>
    <dl><dt>Total</dt><dd data-cart-total>€0.00</dd></dl>
    {_cues(AURORA, ("low_stock", "offer_deadline"))}
  </aside>
</div>
<section class="panel confirmation" data-confirmation hidden>
  <p class="eyebrow">Order placed</p>
  <h2>Thank you! Order <span data-order-id></span></h2>
  <ul class="order-lines" data-order-lines></ul>
  <p class="lede">Total paid: <strong data-order-total></strong></p>
  <h3>What Journey Engine attributed this purchase to</h3>
  <div class="attribution" data-attribution><p class="muted">Recording the purchase…</p></div>
  <a class="button ghost" href="/">Back to the shop</a>
</section>"""
    return layout(context, title="Checkout", page="checkout", body=body)


def not_found(context: Context) -> str:
    body = """<h1 class="page-title">Not found</h1><p><a href="/">Back to the shop</a></p>"""
    return layout(context, title="Not found", page="not-found", body=body)
