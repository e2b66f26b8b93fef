"""The test run's environment, set before pytest-django loads the settings.

Loaded as a plugin (``-p tests.environment`` in pyproject's ``addopts``): conftest files
come too late, since pytest-django reads the settings before it imports them. It sets

- keys of the test run's own (``SECRET_KEY``, ``HASH_KEY``), whatever the shell holds:
  tests never see a real deployment's keys;
- the plain-HTTP settings (``config.development.PLAIN_HTTP``): the test client and the
  browser tests speak HTTP to servers on 127.0.0.1;
- and, when ``DATABASE_URL`` or ``REDIS_URL`` is unset, starts or reuses the embedded
  servers and exports their URLs.

All of it is in ``os.environ``, so the processes tests start (the ASGI server, a Celery
worker) inherit it.
"""

from __future__ import annotations

import os

import pytest

from config.development import PLAIN_HTTP, data_dir, is_development

TEST_KEYS = {
    "SECRET_KEY": "test-run-secret-key-used-by-tests-only-9f3b2c7d41e85a06",
    "HASH_KEY": "test-run-hash-key-used-by-tests-only-5d1e0a9c37b64f28",
}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    os.environ.update(TEST_KEYS)
    os.environ.update(PLAIN_HTTP)
    options = parser.parse_known_args(args)
    if is_development() and not (options.help or options.version):
        from config.embedded import ensure_services

        ensure_services(data_dir())
