"""The test run's environment, set before pytest-django loads the settings.

Loaded as a plugin (``-p tests.environment`` in pyproject's ``addopts``): conftest files
come too late, since pytest-django reads the settings before it imports them. When
``DATABASE_URL`` or ``REDIS_URL`` is unset, it starts or reuses the embedded servers and
exports their URLs, so the processes tests start (the ASGI server, a Celery worker)
inherit them.
"""

from __future__ import annotations

import pytest

from config.development import data_dir, is_development


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    options = parser.parse_known_args(args)
    if is_development() and not (options.help or options.version):
        from config.embedded import ensure_services

        ensure_services(data_dir())
