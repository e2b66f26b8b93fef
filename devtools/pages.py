"""A shop's pages on their own origin, for the SDK's browser tests and benchmark.

:class:`PageServer` is a tiny static HTTP server (stdlib ``ThreadingHTTPServer`` in a
thread) on a free 127.0.0.1 port: another origin than the engine's, as a real shop's
pages are. Pages are registered with :meth:`PageServer.page`; :func:`sdk_page` writes
one whose only integration is the SDK's script tag.
"""

from __future__ import annotations

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HTML = "text/html; charset=utf-8"


class PageServer:
    """``with PageServer() as shop: shop.page("/p", html)`` serves ``html`` at ``shop.origin + "/p"``."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, str]] = {}
        self.origin = ""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def page(self, path: str, text: str, content_type: str = HTML) -> str:
        """Serve ``text`` at ``path`` (the query string is ignored); its URL."""
        self.pages[path] = (text, content_type)
        return self.origin + path

    def start(self) -> PageServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="page-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> PageServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _handler_for(server: PageServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            text, content_type = server.pages.get(urlsplit(self.path).path, (None, HTML))
            body = (text if text is not None else "<!doctype html><title>Not found</title>").encode()
            self.send_response(200 if text is not None else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's name)
            pass

    return Handler


def sdk_page(
    *, script_src: str, site_key: str, body: str, title: str = "Shop", head: str = "", **attributes: str | int
) -> str:
    """A shop page whose only integration is the SDK's script tag.

    ``attributes`` become ``data-*`` attributes of the tag (``slot_timeout=300`` ->
    ``data-slot-timeout="300"``); ``head`` goes before the tag.
    """
    extra = "".join(f' data-{name.replace("_", "-")}="{html.escape(str(value))}"' for name, value in attributes.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>{head}"
        f'<script src="{html.escape(script_src)}" data-site-key="{html.escape(site_key)}"{extra} async></script>'
        f"</head><body>{body}</body></html>"
    )
