"""The benchmark servers' settings: the product's, and a URLconf that adds the bare
reference endpoint (:mod:`devtools.bench_urls`). The product's URLconf serves no benchmark view."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "devtools.bench_urls"
