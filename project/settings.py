"""One settings module; every difference between environments comes from environment variables.

With nothing set the project runs on an embedded default (SQLite file, tasks executed in process) so that a
machine with no servers can run the quick start. With DATABASE_URL and REDIS_URL / CELERY_BROKER_URL set it runs on
PostgreSQL (psycopg 3) and a Redis broker.
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


DEBUG = env_bool("DEBUG", False)
EMBEDDED = not os.environ.get("DATABASE_URL")
# Production (a DATABASE_URL and DEBUG off) must bring its own secret; only the embedded default and DEBUG runs fall
# back to a throwaway development key.
SECRET_KEY = os.environ.get("SECRET_KEY") or ""
if not SECRET_KEY:
    if DEBUG or EMBEDDED:
        SECRET_KEY = "dev-only-insecure-key-never-used-in-production-0123456789abcdef"
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment (or DEBUG=1 for local development).")

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "esports.profiles",
    "esports.tournaments",
    "esports.economy",
    "esports.teams",
    "esports.achievements",
    "activity",
    "stats",
    "tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

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

# --- Database -------------------------------------------------------------------------------------------------
SQLITE_PATH = os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: one file, concurrent readers while a writer works, and waits instead of "locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    # A stuck lock must surface as an error the task retries, never as a worker hung forever.
    DATABASES["default"]["OPTIONS"].setdefault("options", f"-c lock_timeout={env_int('DB_LOCK_TIMEOUT_MS', 10000)}")
DATABASE_BACKEND = "postgresql" if "postgresql" in DATABASES["default"]["ENGINE"] else "sqlite"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Celery ---------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""
# No broker configured means the embedded default: tasks execute in process, through the same task code.
TASKS_IN_PROCESS = not CELERY_BROKER_URL
CELERY_TASK_ALWAYS_EAGER = TASKS_IN_PROCESS
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"  # beat crontabs are read in this zone: 03:00 means 03:00 UTC
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540)
CELERY_TASK_DEFAULT_QUEUE = "events"
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_ROUTES = {
    "tasks.recording.*": {"queue": "events"},
    "tasks.maintenance.*": {"queue": "maintenance"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# kombu's Redis transport has no socket timeouts by default: a dead Redis would hang the publishing request.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": float(os.environ.get("BROKER_CONNECT_TIMEOUT", "0.25")),
    "socket_timeout": float(os.environ.get("BROKER_SOCKET_TIMEOUT", "2")),
    "max_retries": 0,
    "visibility_timeout": env_int("BROKER_VISIBILITY_TIMEOUT", 3600),
    "retry_on_timeout": False,
}
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("BROKER_CONNECT_TIMEOUT", "0.25"))
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Activity ledger --------------------------------------------------------------------------------------------
# "async": receivers enqueue a task after commit (production). "sync": the same service runs inline after commit
# (the seeds' behaviour, kept for comparison and for tests of the services).
ACTIVITY_RECORDING = os.environ.get("ACTIVITY_RECORDING", "async")
ACTIVITY_METADATA_MAX_BYTES = env_int("ACTIVITY_METADATA_MAX_BYTES", 4096)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

