"""Cross-origin calls from a shop's pages: django-cors-headers, with a per-site origin check.

django-cors-headers answers the preflights and adds the ``Access-Control-*`` headers;
``CORS_URLS_REGEX`` (settings) limits it to the browser endpoints, so staff endpoints
and the stock feed never answer cross-origin. Which origin is allowed depends on the
site, which a global ``CORS_ALLOWED_ORIGINS`` cannot express, so the library asks
:func:`origin_allowed_for_request` through its ``check_request_enabled`` signal:

- a real call names its site (``X-Site-Key``, or ``?site_key=`` for a beacon): the
  origin must be one of that site's;
- a preflight carries no key (browsers send no custom header values in it): the origin
  must be one that some active site allows. The call that follows is checked against
  its own site and refused with 403 ``origin_not_allowed`` (``journeys.authentication``).
"""

from __future__ import annotations

import re

from corsheaders.middleware import CorsMiddleware
from corsheaders.signals import check_request_enabled
from django.conf import settings
from django.dispatch import receiver

from journeys.authentication import SITE_KEY_HEADER, SITE_KEY_PARAM
from journeys.selectors import origin_allowed, site_for_key

_BROWSER_PATHS = re.compile(settings.CORS_URLS_REGEX)


class SyncCorsMiddleware(CorsMiddleware):
    """django-cors-headers' middleware, run as sync code (in a thread under ASGI).

    Its async path sends ``check_request_enabled`` inside the event loop, where the
    receiver below may (re)load the sites from the database: Django refuses that
    (``SynchronousOnlyOperation``) and every preflight after a site change would fail.
    """

    async_capable = False


@receiver(check_request_enabled, dispatch_uid="journeys.cors.origin_allowed_for_request")
def origin_allowed_for_request(sender, request, **kwargs) -> bool:
    origin = request.headers.get("origin")
    if not origin or not _BROWSER_PATHS.match(request.path_info):
        return False
    key = request.META.get(SITE_KEY_HEADER) or request.GET.get(SITE_KEY_PARAM)
    if key:
        site = site_for_key(key)
        return site is not None and origin_allowed(origin, site)
    return origin_allowed(origin)
