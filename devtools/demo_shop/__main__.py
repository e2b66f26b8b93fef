"""``python -m devtools.demo_shop --engine URL --site-key pk_... --secret-key sk_... [--port 8001]``.

The secret key may come from the environment (``DEMO_SHOP_SECRET_KEY``) instead, so it
does not show in the process list; ``make run`` passes it that way.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from datetime import datetime
from decimal import Decimal, InvalidOperation

from devtools.demo_shop.server import Deal, DemoShop

SECRET_ENV = "DEMO_SHOP_SECRET_KEY"


def deal_arg(text: str) -> tuple[str, Deal]:
    """``SKU:PERCENT:ENDS_AT`` (ISO 8601 with a zone), e.g. ``AUR-H1:20:2026-12-07T20:00:00+00:00``."""
    try:
        sku, percent, ends_at = text.split(":", 2)
        deal = Deal(percent=Decimal(percent), ends_at=datetime.fromisoformat(ends_at))
    except (ValueError, InvalidOperation):
        raise argparse.ArgumentTypeError(f"{text!r} is not SKU:PERCENT:ENDS_AT") from None
    if deal.ends_at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: ENDS_AT needs a time zone")
    return sku, deal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo_shop", description=__doc__.splitlines()[0])
    parser.add_argument("--engine", required=True, help="the engine's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--site-key", required=True, help="the site's public key (pk_...), for the pages")
    parser.add_argument(
        "--secret-key",
        default=os.environ.get(SECRET_ENV),
        help=f"the site's secret key (sk_...), for the stock feed; default ${SECRET_ENV}",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--deal",
        type=deal_arg,
        action="append",
        default=[],
        help="a discount honoured at checkout until its end: SKU:PERCENT:ENDS_AT (repeatable)",
    )
    parser.add_argument("--feed-interval", type=float, default=60.0, help="seconds between stock confirmations")
    args = parser.parse_args(argv)
    if not args.secret_key:
        parser.error(f"--secret-key or ${SECRET_ENV} is required")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    shop = DemoShop(
        engine=args.engine,
        site_key=args.site_key,
        secret_key=args.secret_key,
        host=args.host,
        port=args.port,
        deals=dict(args.deal),
        feed_interval=args.feed_interval,
    )
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    shop.start()
    logging.getLogger("devtools.demo_shop").info("The demo shop serves %s (engine %s)", shop.url, args.engine)
    stopped.wait()
    shop.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
