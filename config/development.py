"""What a checkout with nothing configured gets: the development environment.

Settings only read the environment, and refuse to start without ``DATABASE_URL``,
``REDIS_URL``, ``SECRET_KEY`` and ``HASH_KEY``. Production sets all four. A checkout
where ``DATABASE_URL`` or ``REDIS_URL`` is unset is a development one: ``manage.py``
(and so ``make run``, ``make check``, ``make bench``) calls
:func:`development_environment` before Django loads the settings. It starts or reuses
the embedded servers (:mod:`config.embedded`) and exports this checkout's own keys,
made once in ``.data/`` next to the embedded database whose hashes ``HASH_KEY`` keys,
so every later run, and every child process, uses the same ones. Keys already in the
environment win.

The test run sets keys of its own (``tests/environment.py``). Nothing here is imported
by the settings, the WSGI/ASGI apps or the Celery app.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
KEY_FILES = {"SECRET_KEY": "secret-key", "HASH_KEY": "hash-key"}

# The development servers (``make run``, the benchmark's, the browser tests') speak plain
# HTTP on 127.0.0.1, where the production defaults (redirect to HTTPS, cookies sent only
# over HTTPS) would make the admin unusable. Their starters set these in the servers'
# environment; a value set in the environment already wins.
PLAIN_HTTP = {
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
}


def data_dir() -> Path:
    """Where the development data lives: ``JOURNEY_DATA_DIR`` or ``<checkout>/.data``."""
    return Path(os.environ.get("JOURNEY_DATA_DIR") or BASE_DIR / ".data")


def is_development() -> bool:
    """True unless both servers are named: production (and CI) always sets both."""
    return not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))


def development_environment() -> None:
    """Export this checkout's keys (unless set) and start or reuse the embedded servers."""
    for name, value in checkout_keys(data_dir()).items():
        os.environ.setdefault(name, value)
    from config.embedded import ensure_services

    ensure_services(data_dir())


def plain_http_environment() -> dict[str, str]:
    """The :data:`PLAIN_HTTP` settings for a child process, except those set in ours."""
    return {name: value for name, value in PLAIN_HTTP.items() if name not in os.environ}


def checkout_keys(directory: Path) -> dict[str, str]:
    """``{"SECRET_KEY": ..., "HASH_KEY": ...}``: two independent random keys, each made
    once in its own file (mode 0600) of ``directory`` and read from there afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    return {name: _key_file(directory / filename) for name, filename in KEY_FILES.items()}


def _key_file(path: Path) -> str:
    if not path.exists():
        # Written aside and linked into place: two first runs at once both read one key.
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50) + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
