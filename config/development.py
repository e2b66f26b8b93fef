"""What a checkout with nothing configured gets: the development environment.

Settings only read the environment, and refuse to start without ``DATABASE_URL`` and
``REDIS_URL``; production sets both. A checkout where either is unset is a development
one: ``manage.py`` (and so ``make run``, ``make check``, ``make bench``) calls
:func:`development_environment` before Django loads the settings, which starts or
reuses the embedded servers (:mod:`config.embedded`) and exports their URLs for every
child process. The test run does the same for itself (``tests/environment.py``).
Nothing here is imported by the settings, the WSGI/ASGI apps or the Celery app.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Where the development data lives: ``JOURNEY_DATA_DIR`` or ``<checkout>/.data``."""
    return Path(os.environ.get("JOURNEY_DATA_DIR") or BASE_DIR / ".data")


def is_development() -> bool:
    """True unless both servers are named: production (and CI) always sets both."""
    return not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))


def development_environment() -> None:
    """Start or reuse the embedded servers for the URLs not set, and export their URLs."""
    from config.embedded import ensure_services

    ensure_services(data_dir())
