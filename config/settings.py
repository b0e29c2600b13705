"""Care's settings. Everything that differs between machines comes from the environment.

See docs/deploy.md for the variables and the embedded/local/external service modes.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import env_bool, env_int, env_list, env_str, load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
load_env_file(BASE_DIR / ".env")
RUN_DIR = Path(env_str("CARE_RUN_DIR", str(BASE_DIR / ".run")))

DEBUG = env_bool("DJANGO_DEBUG", default=False)
_DEV_SECRET = "care-insecure-development-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env_str("DJANGO_SECRET_KEY", _DEV_SECRET if DEBUG else None)
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to a private value when DJANGO_DEBUG is off.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # daphne first: it makes `runserver` serve ASGI, websockets included.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "channels",
    # Care's apps, lowest capability first (see docs/architecture.md).
    "care.core",
    "care.tenants",
    "care.accounts",
    "care.realtime",
    "care.contacts",
    "care.tickets",
    "care.routing",
    "care.sla",
    "care.calls",
    "care.connectors",
    "care.reporting",
    "care.macros",
    "care.mentions",
    "care.desk",
    "care.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Data stores ---------------------------------------------------------------------------------
# Care is PostgreSQL-only: it relies on row locks, SKIP LOCKED, array fields and full-text search.
DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/care")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        f"DATABASE_URL must point to PostgreSQL, got {DATABASES['default']['ENGINE']}."
    )
DATABASES["default"]["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME", "test_care")}
# No JIT compiling: it pays off for long analytic queries, not Care's short ones. With it on, the
# planner's estimates for routing's per-agent subqueries on a large database trigger about 0.6 s of
# compiling for a 2 ms query (docs/performance.md, "Routing").
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_db_options["options"] = f"{_db_options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# One Redis, separate logical databases: 0 Celery broker, 1 channel layer, 2 cache.
_redis_base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") >= 3 else REDIS_URL
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", f"{_redis_base}/0")
CHANNEL_LAYER_URL = env_str("CHANNEL_LAYER_URL", f"{_redis_base}/1")
CACHE_URL = env_str("CACHE_URL", f"{_redis_base}/2")

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
# "core" (channels_redis's default: a list per connection, messages wait up to CHANNEL_LAYER_CAPACITY)
# or "pubsub" (one Redis PUBLISH per group, fanned out inside each server process: far cheaper for
# many connections per group, no buffering; the live log fills anything missed, docs/realtime.md).
CHANNEL_LAYER_BACKEND = env_str("CHANNEL_LAYER_BACKEND", "pubsub")
if CHANNEL_LAYER_BACKEND == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [CHANNEL_LAYER_URL], "prefix": env_str("CHANNEL_LAYER_PREFIX", "care")},
        }
    }
elif CHANNEL_LAYER_BACKEND == "core":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [CHANNEL_LAYER_URL],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "care"),
                "capacity": env_int("CHANNEL_LAYER_CAPACITY", 1000),
            },
        }
    }
else:
    raise ImproperlyConfigured(
        f'CHANNEL_LAYER_BACKEND must be "pubsub" or "core", not {CHANNEL_LAYER_BACKEND!r}.'
    )

# Live updates (docs/realtime.md): how many recent events per stream a reconnecting client can catch
# up on, and for how long; an agent whose websocket heartbeats stop this long is set offline.
LIVE_LOG_LENGTH = env_int("LIVE_LOG_LENGTH", 1000)
LIVE_LOG_SECONDS = env_int("LIVE_LOG_SECONDS", 6 * 3600)

# Key for secrets stored encrypted (care/core/secrets.py); unset: derived from SECRET_KEY.
SECRETS_ENCRYPTION_KEY = env_str("SECRETS_ENCRYPTION_KEY", "")

# How long one process may use service hours and routing queues it read before reading them again
# (care/core/memo.py; a change made in the same process applies at once). 0 turns the memo off.
CONFIG_MEMO_SECONDS = env_int("CONFIG_MEMO_SECONDS", 5)
PRESENCE_TIMEOUT_SECONDS = env_int("PRESENCE_TIMEOUT_SECONDS", 90)

# --- Celery --------------------------------------------------------------------------------------
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Safety net for inbound messages whose processing task was lost (see care.connectors.tasks).
    "connectors.sweep_inbound": {"task": "care.connectors.tasks.sweep_inbound", "schedule": 60.0},
    # Replies whose send task was lost (see care.connectors.email.outbound_tasks).
    "connectors.sweep_outbound": {
        "task": "care.connectors.email.outbound_tasks.sweep_outbound",
        "schedule": 60.0,
    },
    # Social replies and attachment downloads whose task was lost (care/connectors/social/).
    "connectors.sweep_social_outbound": {
        "task": "care.connectors.social.outbound_tasks.sweep_social_outbound",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "connectors.sweep_social_media": {
        "task": "care.connectors.social.tasks.sweep_social_media",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # Fetch new mail from the IMAP mailboxes (care.connectors.email.imap_tasks).
    "connectors.poll_mailboxes": {
        "task": "care.connectors.email.imap_tasks.poll_mailboxes",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # The SLA safety net: warnings and breaches whose timer was lost (care.sla.services.sla_sweep).
    "sla.sweep": {
        "task": "care.sla.tasks.sweep_sla",
        "schedule": env_int("SLA_SWEEP_SECONDS", 10),
        "options": {"expires": 9},
    },
    # Timers of SLA instants that come within reach (care.sla.services.sla_arm_upcoming).
    "sla.arm_upcoming": {
        "task": "care.sla.tasks.arm_upcoming",
        "schedule": 900.0,
        "options": {"expires": 600},
    },
    # Routing's safety net: expired offers, lost step timers, idle agents (care.routing.services).
    "routing.sweep": {
        "task": "care.routing.tasks.sweep_routing",
        "schedule": env_int("ROUTING_SWEEP_SECONDS", 10),
        "options": {"expires": 9},
    },
    # Agents whose websocket heartbeats stopped go offline (care.accounts.services.agent_presence_sweep).
    "accounts.presence_sweep": {
        "task": "care.accounts.tasks.presence_sweep",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    # Wallboards refresh on every change; this keeps them fresh when nothing changes.
    "reporting.refresh_wallboards": {
        "task": "care.reporting.tasks.refresh_wallboards",
        "schedule": 30.0,
        "options": {"expires": 29},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(RUN_DIR / "celerybeat-schedule")

# --- Auth ----------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "desk:my_tenants"
LOGOUT_REDIRECT_URL = "desk:home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- I18N: store UTC, show the user's language ---------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("de", _("German"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files ---------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT", str(RUN_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Email ------------------------------------------------------------------------------------------
# Outbound mail goes through Django's backend; without EMAIL_HOST (development) it is printed.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", EMAIL_PORT == 587)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "care@localhost")
# The largest raw message the inbound endpoint accepts.
CARE_MAX_EMAIL_BYTES = env_int("CARE_MAX_EMAIL_BYTES", 50 * 1024 * 1024)

# --- API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "care.core.api.exception_handler",
}

# --- Security when served over HTTPS ------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_PROXY", False) else None
)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("CARE_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
