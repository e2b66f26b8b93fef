"""Who may call what: a site's public key for browser calls, staff auth for staff calls."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from journeys.selectors import site_for_key

SITE_KEY_HEADER = "HTTP_X_SITE_KEY"


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


def site_from_header(request) -> object | None:
    """The site named by ``X-Site-Key``; ``AuthenticationFailed`` when the key is unknown."""
    key = request.META.get(SITE_KEY_HEADER)
    if not key:
        return None
    site = site_for_key(key)
    if site is None:
        raise exceptions.AuthenticationFailed("Unknown or inactive site key.", code="invalid_site_key")
    return site


class SiteKeyAuthentication(BaseAuthentication):
    """``X-Site-Key: pk_...``: write events and ask decisions for that site only."""

    def authenticate(self, request):
        site = site_from_header(request)
        if site is None:
            return None
        request.site = site
        return SiteUser(site), site

    def authenticate_header(self, request) -> str:
        return "X-Site-Key"


class HasSiteKey(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not isinstance(request.user, SiteUser):
            raise exceptions.NotAuthenticated("Send the site's public key in the X-Site-Key header.")
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


class SiteKeyScheme(OpenApiAuthenticationExtension):
    target_class = SiteKeyAuthentication
    name = "SiteKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Site-Key"}
