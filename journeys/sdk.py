"""``/sdk/v1/journey.js``: the browser SDK (``static/sdk/journey.js``), served by the engine.

The file is read and gzipped once per process. The major version is in the path (a
breaking change gets ``/sdk/v2/``); within v1 a fix reaches every shop within a day:
browsers and CDNs keep the script for a day and revalidate it by ETag after that.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe

SDK_SOURCE = Path(settings.BASE_DIR) / "static" / "sdk" / "journey.js"
SDK_CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"


@dataclass(frozen=True)
class Script:
    body: bytes
    gzipped: bytes
    etag: str


@functools.cache
def sdk_script() -> Script:
    body = SDK_SOURCE.read_bytes()
    return Script(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
    )


@require_safe
def sdk_v1(request) -> HttpResponse:
    script = sdk_script()
    if script.etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    elif "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(script.gzipped, content_type="text/javascript; charset=utf-8")
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(script.body, content_type="text/javascript; charset=utf-8")
    response["ETag"] = script.etag
    response["Cache-Control"] = SDK_CACHE_CONTROL
    # Lets a shop load it with <script crossorigin> (error details, subresource integrity).
    response["Access-Control-Allow-Origin"] = "*"
    response["X-Content-Type-Options"] = "nosniff"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response
