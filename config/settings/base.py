"""Settings for every environment, from environment variables (README, Configuration), with embedded defaults.

Development runs on these as they are; test.py and production.py build on them. production.py checks the environment
before importing this module, so the defaults that generate secrets here never run in production.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.common.env import env_bool, env_int, env_list, env_str, secret_key_from_file

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("TANHUI_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY") or secret_key_from_file(VAR_DIR / "secret_key")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "geo",
    "accounting",
    "ledger",
]

MIDDLEWARE = [
    "ledger.log.middleware.EntriesOnDiskMiddleware",  # outermost: runs after every other middleware has read
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.common.limits.RequestBodyLimitMiddleware",  # before CSRF, which parses form bodies
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
        # Shared page layout in config/templates; each app's pages in <app>/templates/<app>/.
        "DIRS": [BASE_DIR / "config" / "templates", BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "libraries": {"tanhui": "config.common.pagetags"},
        },
    },
]

# Embedded default: an SQLite file under var/. Production: DATABASE_URL (PostgreSQL).
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tanhui.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Waiting on the write lock beats failing with "database is locked" when a worker thread writes too.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
if env_str("TEST_DATABASE_NAME"):
    # Lets a separate Celery worker process and the test run share one test database.
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]  # locale/zh_Hans/LC_MESSAGES/django.po, compiled .mo committed beside it
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Figures on the pages are grouped by the `grouped` filter (config/common/pagetags.py), the same way in English and
# Chinese (config/formats). Not everywhere: years, ids, codes and tree sizes must read as they are written.
FORMAT_MODULE_PATH = ["config.formats"]
USE_THOUSAND_SEPARATOR = False

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request when it is missing
STATICFILES_DIRS = [BASE_DIR / "config" / "static"] + ([BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else [])
WHITENOISE_USE_FINDERS = True  # serve straight from app folders, no collectstatic needed for `make run`
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MAX_RASTER_BYTES = env_int("MAX_RASTER_BYTES", 4 * 1024**3)
# Pixels a raster may declare (width x height x bands), checked before any is read: a county of 12,000 km2 at 10 m is
# 1.2 x 10^8; the default leaves room for a large prefecture at 10 m, or one band of a province at 30 m.
MAX_RASTER_PIXELS = env_int("MAX_RASTER_PIXELS", 2 * 10**9)
MAX_PARCEL_FILE_BYTES = env_int("MAX_PARCEL_FILE_BYTES", 200 * 1024**2)
# Request bodies (config.common.limits): every endpoint at most MAX_REQUEST_BODY_BYTES unless its view names another
# limit (rasters, parcels), and at most MAX_ANONYMOUS_BODY_BYTES from a caller without credentials (POST /api/verify/).
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 32 * 1024**2)
MAX_ANONYMOUS_BODY_BYTES = env_int("MAX_ANONYMOUS_BODY_BYTES", 20 * 1024**2)
# What Django itself reads into memory (request.body, which DRF's JSON parsing uses; form fields): the largest body
# any endpoint takes as JSON, a backstop behind the limit of each (config.common.limits).
DATA_UPLOAD_MAX_MEMORY_SIZE = max(MAX_REQUEST_BODY_BYTES, MAX_PARCEL_FILE_BYTES, MAX_ANONYMOUS_BODY_BYTES)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024**2
# Uploads larger than that stream to this process's scratch folder under MEDIA_ROOT/tmp, swept when it dies.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler",
                        "geo.scratch.ScratchFileUploadHandler"]

# Celery: with no broker, tasks run in-process (eager) so nothing needs installing.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
if CELERY_BROKER_URL and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    _default_result_backend = CELERY_BROKER_URL
elif CELERY_BROKER_URL:
    _default_result_backend = "rpc://"
else:
    _default_result_backend = None
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", _default_result_backend)
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-task leaves the message for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.problems.problem_exception_handler",
    # JSON bodies parsed with a depth limit whatever the recursion limit (config.common.jsonlimits).
    "DEFAULT_PARSER_CLASSES": [
        "config.common.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.common.paging.Pagination",
    "PAGE_SIZE": 100,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 1000)  # a page holds at most this many results, whatever `limit` says

# HTTP caching of API reads (config.common.api): what moves on with the ledger (the latest checkpoint, a proof to
# it) may be kept this many seconds; a bundle proven to a fixed tree size this many (only its anchor's status may
# change at that size). Checkpoints and proofs at a fixed size are immutable; assets and the latest bundle are
# revalidated with their ETag (If-None-Match -> 304).
API_CACHE_LATEST_MAX_AGE_S = env_int("API_CACHE_LATEST_MAX_AGE_S", 5)
API_CACHE_BUNDLE_MAX_AGE_S = env_int("API_CACHE_BUNDLE_MAX_AGE_S", 3600)

SPECTACULAR_SETTINGS = {
    "TITLE": "Tanhui API",
    "DESCRIPTION": """Ecological-asset and carbon-sink accounting: land-cover rasters, parcels, carbon runs,
a verifiable rights ledger and pledge bundles.

**Signing in.** Send `Authorization: Token <key>` (an administrator creates API users with one role each:
`bureau` of one county, `bank`, `exchange` or `auditor`). Reads are open to every role; each write says who may
make it. The ledger's checkpoints, keys and anchors, and POST /api/verify/, need no token.

**The flow.** A bureau uploads a raster (POST /api/rasters/), imports parcels (POST /api/parcels/), publishes a
carbon method (POST /api/methods/; GET /api/methods/kinds/ lists each kind's parameters) and starts a run
(POST /api/runs/). It registers an asset over a parcel, confirms it and values it with the run's result. A bank
pledges it (POST /api/assets/{code}/pledges/), downloads its bundle and verifies it; an exchange transfers or
retires it. Every change is an entry of the ledger (GET /api/ledger/entries/), proven in signed checkpoints,
and can be sent to your server as a signed webhook (POST /api/webhooks/).

**Errors** are RFC 9457 `application/problem+json` in the caller's language (`Accept-Language`); an invalid
request lists each field under `errors`. A refused request changes nothing.

**Retries.** Every state-changing POST of the registry takes an `Idempotency-Key` header: a retry with the same
key and body gets the first answer again.

**Units.** Areas in hectares on the ellipsoid; carbon in t C (`stock_tC`) and t CO2e (`stock_tCO2e`, × 44/12);
decimals and money as strings, money as {"amount": "123.45", "currency": "CNY"}; timestamps RFC 3339.""",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets that share a field name ("status", "kind") with others get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "AssetStatusEnum": "ledger.registry.models.Asset.STATUSES",
        "AssetStatusFilterEnum": "ledger.registry.models.Asset.STATUS_FILTERS",
        "PartyKindEnum": "ledger.registry.models.Party.KINDS",
        "RunStatusEnum": "accounting.models.AccountingRun.STATUSES",
        # GeoJSON's "type" members (config.common.api.ConstantField).
        "FeatureTypeEnum": ["Feature"],
        "FeatureCollectionTypeEnum": ["FeatureCollection"],
    },
    # Every operation also documents the problems any may answer (401 when signed out, 503 durability).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.common.api.document_common_problems",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

if not DEBUG and env_bool("SECURE_COOKIES", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Rights registry (ledger.registry): pledges may sum to at most this percent of the valuation's money value at its
# lower 95% bound; parcels may overlap registered assets by at most this many geodesic hectares; webhooks go only
# to loopback addresses or these host names, retried with exponential backoff (base × 2**(attempt − 1) seconds).
PLEDGE_LTV_LIMIT_PCT = env_str("PLEDGE_LTV_LIMIT_PCT", "50")
ASSET_OVERLAP_TOLERANCE_HA = float(env_str("ASSET_OVERLAP_TOLERANCE_HA", "0.01"))
WEBHOOK_ALLOWED_HOSTS = env_list("WEBHOOK_ALLOWED_HOSTS", [])
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
WEBHOOK_RETRY_BASE_S = env_int("WEBHOOK_RETRY_BASE_S", 10)
WEBHOOK_RETRY_MAX_S = env_int("WEBHOOK_RETRY_MAX_S", 3600)
WEBHOOK_TIMEOUT_S = env_int("WEBHOOK_TIMEOUT_S", 10)
WEBHOOK_STRANDED_AFTER_S = env_int("WEBHOOK_STRANDED_AFTER_S", 600)  # a next attempt this overdue lost its task
WEBHOOK_SWEEP_INTERVAL_S = env_int("WEBHOOK_SWEEP_INTERVAL_S", 300)

# Anchoring checkpoints on an EVM chain (ledger.anchoring.services, docs/anchoring.md). Off unless ANCHOR_RPC_URL is
# set (http(s)://..., or tester://NAME for an in-process chain). ANCHOR_KEY_FILE holds the sender's private key in
# hex (unset: VAR_DIR/keys/anchor.key, created on first use); ANCHOR_TO receives the value-0 transactions (unset: the
# sender itself). ANCHOR_GAS_LIMIT 0 computes the limit from the data (intrinsic gas + ANCHOR_GAS_MARGIN). Faults are
# retried after ANCHOR_RETRY_BASE_S × 2**(faults − 1) seconds, at most ANCHOR_RETRY_MAX_S.
ANCHOR_RPC_URL = env_str("ANCHOR_RPC_URL")
ANCHOR_KEY_FILE = env_str("ANCHOR_KEY_FILE")
ANCHOR_TO = env_str("ANCHOR_TO")
ANCHOR_CONFIRMATIONS = env_int("ANCHOR_CONFIRMATIONS", 12)
ANCHOR_INTERVAL_S = env_int("ANCHOR_INTERVAL_S", 300)
ANCHOR_GAS_LIMIT = env_int("ANCHOR_GAS_LIMIT", 0)
ANCHOR_GAS_MARGIN = env_int("ANCHOR_GAS_MARGIN", 2000)
ANCHOR_RPC_TIMEOUT_S = env_int("ANCHOR_RPC_TIMEOUT_S", 5)
ANCHOR_RETRY_BASE_S = env_int("ANCHOR_RETRY_BASE_S", 30)
ANCHOR_RETRY_MAX_S = env_int("ANCHOR_RETRY_MAX_S", 3600)
ANCHOR_DROPPED_AFTER_S = env_int("ANCHOR_DROPPED_AFTER_S", 600)

# Faults (docs/reliability.md): work to do after a commit goes through an outbox row written in the same
# transaction, published right after commit over a connection that gives up after OUTBOX_PUBLISH_TIMEOUT_S with no
# retry, otherwise by the sweep every OUTBOX_SWEEP_INTERVAL_S; after a failure a process leaves the broker alone for
# OUTBOX_RETRY_AFTER_S; a claim older than OUTBOX_CLAIM_S is a dead sender's; sent rows are forgotten after
# OUTBOX_KEEP_S. A run beats its heartbeat every RUN_HEARTBEAT_S; one silent for
# RUN_STALE_AFTER_S is queued again by the sweep every RUN_SWEEP_INTERVAL_S. The broker: connections give up after
# BROKER_CONNECT_TIMEOUT_S, a read after BROKER_SOCKET_TIMEOUT_S, and Redis hands an unacknowledged message (its
# worker was killed) to another after BROKER_VISIBILITY_TIMEOUT_S, which must exceed the longest countdown
# (webhook backoff). Without a broker, tasks run on INPROCESS_THREADS threads of the process (INPROCESS_TASKS
# "background"), or at once in the caller ("inline": the tests).
OUTBOX_PUBLISH_TIMEOUT_S = env_int("OUTBOX_PUBLISH_TIMEOUT_S", 1)
OUTBOX_SWEEP_INTERVAL_S = env_int("OUTBOX_SWEEP_INTERVAL_S", 10)
OUTBOX_RETRY_AFTER_S = env_int("OUTBOX_RETRY_AFTER_S", 5)
OUTBOX_CLAIM_S = env_int("OUTBOX_CLAIM_S", 60)
OUTBOX_KEEP_S = env_int("OUTBOX_KEEP_S", 24 * 3600)
OUTBOX_SEND_AT_START = env_bool("OUTBOX_SEND_AT_START", True)
RUN_HEARTBEAT_S = env_int("RUN_HEARTBEAT_S", 5)
RUN_STALE_AFTER_S = env_int("RUN_STALE_AFTER_S", 120)
RUN_SWEEP_INTERVAL_S = env_int("RUN_SWEEP_INTERVAL_S", 60)
BROKER_CONNECT_TIMEOUT_S = env_int("BROKER_CONNECT_TIMEOUT_S", 3)
BROKER_SOCKET_TIMEOUT_S = env_int("BROKER_SOCKET_TIMEOUT_S", 10)
BROKER_VISIBILITY_TIMEOUT_S = env_int("BROKER_VISIBILITY_TIMEOUT_S", 3600)
INPROCESS_TASKS = env_str("INPROCESS_TASKS", "background")
INPROCESS_THREADS = env_int("INPROCESS_THREADS", 2)
if INPROCESS_TASKS not in ("background", "inline"):
    raise ImproperlyConfigured(f"INPROCESS_TASKS must be background or inline; got {INPROCESS_TASKS!r}")
if RUN_STALE_AFTER_S < 3 * RUN_HEARTBEAT_S:
    raise ImproperlyConfigured(f"RUN_STALE_AFTER_S ({RUN_STALE_AFTER_S}) must be at least 3 × RUN_HEARTBEAT_S "
                               f"({RUN_HEARTBEAT_S}), or a run that is only slow to beat is taken over")
_LONGEST_BACKOFF_S = min(WEBHOOK_RETRY_BASE_S * 2 ** max(WEBHOOK_MAX_ATTEMPTS - 2, 0), WEBHOOK_RETRY_MAX_S)
if CELERY_BROKER_URL and BROKER_VISIBILITY_TIMEOUT_S <= _LONGEST_BACKOFF_S:
    raise ImproperlyConfigured(f"BROKER_VISIBILITY_TIMEOUT_S ({BROKER_VISIBILITY_TIMEOUT_S}) must exceed the longest "
                               f"webhook backoff ({_LONGEST_BACKOFF_S} s), or Redis hands a waiting retry to a "
                               f"second worker")
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_CONNECT_TIMEOUT_S
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = BROKER_CONNECT_TIMEOUT_S  # the Redis result backend
CELERY_REDIS_SOCKET_TIMEOUT = BROKER_SOCKET_TIMEOUT_S
if CELERY_BROKER_URL and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT_S,
                                       "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_S,
                                       "socket_timeout": BROKER_SOCKET_TIMEOUT_S}

# Celery beat, and without a broker the in-process runner (config.celery), which also runs them all at its start.
CELERY_BEAT_SCHEDULE = globals().get("CELERY_BEAT_SCHEDULE", {})
for _name, _task, _interval_s in (
    ("accounting-outbox-sweep", "accounting.outbox_send_pending", OUTBOX_SWEEP_INTERVAL_S),
    ("ledger-outbox-sweep", "ledger.outbox_send_pending", OUTBOX_SWEEP_INTERVAL_S),
    ("accounting-stale-run-sweep", "accounting.runs_requeue_stale", RUN_SWEEP_INTERVAL_S),
    ("ledger-webhook-sweep", "ledger.webhook_deliveries_resend_stranded", WEBHOOK_SWEEP_INTERVAL_S),
    # Signs when entries wait uncovered and the last checkpoint is LEDGER_CHECKPOINT_INTERVAL_S old (ledger.log).
    ("ledger-checkpoint-sweep", "ledger.checkpoint_sign_latest", env_int("LEDGER_CHECKPOINT_INTERVAL_S", 60)),
):
    CELERY_BEAT_SCHEDULE[_name] = {"task": _task, "schedule": _interval_s, "options": {"expires": _interval_s}}
if ANCHOR_RPC_URL:
    CELERY_BEAT_SCHEDULE["ledger-anchoring-tick"] = {
        "task": "ledger.anchoring_tick",
        "schedule": ANCHOR_INTERVAL_S,
        "options": {"expires": ANCHOR_INTERVAL_S},  # a tick nobody ran in time is skipped, not queued up
    }

# Web pages (config/pages.py and each app's pages.py): session sign-in with the API's users and roles.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
HOME_COUNTY_CODE = env_str("HOME_COUNTY_CODE", "510727")  # the county `/` shows to users without one (the demo's)
