"""The product's URLconf plus the decision benchmark's reference endpoint."""

from django.urls import path

from config.urls import handler404, handler500
from config.urls import urlpatterns as product_urlpatterns
from devtools.bench_views import indexed_read

urlpatterns = [*product_urlpatterns, path("bench/indexed-read", indexed_read, name="bench-indexed-read")]

__all__ = ["handler404", "handler500", "urlpatterns"]
