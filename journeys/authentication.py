"""Who may call what: a site's public key for browser calls, its secret key for its backend,
staff auth for staff calls.

Browser calls are also bound to the site's allowed origins: a call whose ``Origin`` the
site does not list is refused before anything is read or written (``journeys/cors.py``
answers the preflights). A call without ``Origin`` (a server, curl) is not a browser's
and is not refused for it; the key is what authenticates it.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from journeys.selectors import origin_allowed, site_for_key, site_for_secret_key

SITE_KEY_HEADER = "HTTP_X_SITE_KEY"
# The query parameter that carries the public key where a header cannot (navigator.sendBeacon).
SITE_KEY_PARAM = "site_key"


class SiteUser:
    """The caller of a browser endpoint: a site, not a person. Never staff."""

    is_authenticated = True
    is_staff = False
    is_superuser = False
    is_active = True

    def __init__(self, site) -> None:
        self.site = site

    def __str__(self) -> str:
        return f"site:{self.site.pk}"


class SecretKeyUser(SiteUser):
    """The caller of a server-to-server endpoint: the site's own backend."""

    def __str__(self) -> str:
        return f"site-backend:{self.site.pk}"


def site_from_header(request) -> object | None:
    """The site named by ``X-Site-Key``; ``AuthenticationFailed`` when the key is unknown."""
    return _site_of_key(request.META.get(SITE_KEY_HEADER))


def _site_of_key(key: str | None):
    if not key:
        return None
    site = site_for_key(key)
    if site is None:
        raise exceptions.AuthenticationFailed("Unknown or inactive site key.", code="invalid_site_key")
    return site


def request_origin(request) -> str | None:
    """The browser's ``Origin``, unless it is the engine's own (same-origin pages)."""
    origin = request.META.get("HTTP_ORIGIN")
    if not origin or origin == f"{request.scheme}://{request.get_host()}":
        return None
    return origin


class SiteKeyAuthentication(BaseAuthentication):
    """``X-Site-Key: pk_...``, or ``?site_key=pk_...`` where no header can be set (a CORS
    "simple" request, ``navigator.sendBeacon``): write events and ask decisions for that
    site only."""

    def authenticate(self, request):
        site = site_from_header(request) or _site_of_key(request.query_params.get(SITE_KEY_PARAM))
        if site is None:
            return None
        request.site = site
        return SiteUser(site), site

    def authenticate_header(self, request) -> str:
        return "X-Site-Key"


class HasSiteKey(BasePermission):
    """A site's public key, from a page on one of the site's allowed origins (or no browser)."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.user, SiteUser) or isinstance(request.user, SecretKeyUser):
            raise exceptions.NotAuthenticated("Send the site's public key in the X-Site-Key header.")
        origin = request_origin(request)
        if origin is not None and not origin_allowed(origin, request.site):
            raise exceptions.PermissionDenied(
                f"Origin '{origin}' is not among this site's allowed origins.", code="origin_not_allowed"
            )
        return True


class SecretKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer sk_...``: the site's backend (stock and offer feeds).

    A public key there is refused with 403 (``secret_key_required``): it is printed in
    every page of the shop, so it must never be able to change stock.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        scheme, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        key = key.strip()
        if scheme != self.keyword or not key:
            if request.META.get(SITE_KEY_HEADER):
                raise exceptions.PermissionDenied(_PUBLIC_KEY_REFUSED, code="secret_key_required")
            return None
        if key.startswith("pk_"):
            raise exceptions.PermissionDenied(_PUBLIC_KEY_REFUSED, code="secret_key_required")
        site = site_for_secret_key(key)
        if site is None:
            raise exceptions.AuthenticationFailed("Unknown secret key.", code="invalid_secret_key")
        request.site = site
        return SecretKeyUser(site), site

    def authenticate_header(self, request) -> str:
        return self.keyword


_PUBLIC_KEY_REFUSED = "This endpoint takes the site's secret key (Authorization: Bearer sk_...), never its public key."


class HasSecretKey(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not isinstance(request.user, SecretKeyUser):
            raise exceptions.NotAuthenticated("Send the site's secret key: Authorization: Bearer sk_...")
        return True


class IsStaff(BasePermission):
    """Staff token or session. A public site key alone is refused with 403."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is not None and user.is_authenticated and user.is_staff:
            return True
        if user is not None and user.is_authenticated:
            raise exceptions.PermissionDenied("Staff access only.", code="staff_only")
        if request.META.get(SITE_KEY_HEADER):
            raise exceptions.PermissionDenied(
                "A public site key cannot read staff endpoints; use a staff token.", code="staff_only"
            )
        raise exceptions.NotAuthenticated("Staff authentication required (Authorization: Token ...).")


class HasPrivacyPermission(BasePermission):
    """Exporting (``GET``) or erasing (``DELETE``) a visitor's data needs its own right,
    ``journeys.export_visitor`` or ``journeys.erase_visitor``: the "Privacy officers"
    role and superusers hold them (``journeys.roles``), other staff accounts do not.
    Refused with 403 ``permission_required`` naming the permission, before anything is
    read or written. Goes after :class:`IsStaff`."""

    REQUIRED = {
        "GET": ("journeys.export_visitor", "Exporting"),
        "HEAD": ("journeys.export_visitor", "Exporting"),
        "DELETE": ("journeys.erase_visitor", "Erasing"),
    }

    def has_permission(self, request, view) -> bool:
        if request.method not in self.REQUIRED:
            return True
        permission, doing = self.REQUIRED[request.method]
        if request.user.has_perm(permission):
            return True
        raise exceptions.PermissionDenied(
            {
                "detail": f"{doing} a visitor's data needs the permission {permission} "
                "(the Privacy officers role); this account does not have it.",
                "code": "permission_required",
                "permission": permission,
            }
        )


class SiteKeyScheme(OpenApiAuthenticationExtension):
    """The header or the query parameter: either one."""

    target_class = SiteKeyAuthentication
    name = ["SiteKey", "SiteKeyQuery"]

    def get_security_requirement(self, auto_schema):
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-Site-Key",
                "description": "The site's public key, `pk_...` (printed by `manage.py create_site`).",
            },
            {
                "type": "apiKey",
                "in": "query",
                "name": SITE_KEY_PARAM,
                "description": "The site's public key as `?site_key=pk_...`, for calls that cannot set a header "
                "(`navigator.sendBeacon`): send the JSON body as `text/plain`.",
            },
        ]


class SecretKeyScheme(OpenApiAuthenticationExtension):
    target_class = SecretKeyAuthentication
    name = "SiteSecretKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The site's secret key, `sk_...`, for the shop's backend only (never a page).",
        }
