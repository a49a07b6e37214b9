"""`/healthz`: is this process able to do its job? Checks the database and the broker, each with a short timeout.

200 with every check's result, or 503 naming the checks that failed (load balancers and orchestrators read the status;
people read the JSON). The embedded default has no broker (tasks run in process): its broker check says so and passes.
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

BROKER_TIMEOUT_SECONDS = 1.0


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        connection.close_if_unusable_or_obsolete()
        return {"ok": False, "error": _describe(exc)}
    return {"ok": True}


def check_broker(url: str | None = None) -> dict:
    url = settings.CELERY_BROKER_URL if url is None else url
    if not url:
        return {"ok": True, "detail": "in-process"}
    try:
        if urlsplit(url).scheme in ("redis", "rediss"):
            _ping_redis(url)
        else:
            _connect_kombu(url)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return {"ok": False, "error": _describe(exc)}
    return {"ok": True}


def _ping_redis(url: str) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One attempt, short timeouts: a health check must answer quickly, never hang on a dead broker.
    client = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT_SECONDS, socket_timeout=BROKER_TIMEOUT_SECONDS,
                                  retry=Retry(NoBackoff(), 0), retry_on_timeout=False, single_connection_client=True)
    try:
        client.ping()
    finally:
        client.close()


def _connect_kombu(url: str) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)


def _describe(exc: Exception) -> str:
    # The exception's class and first line: enough to act on, no connection string (it may hold a password).
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first_line}"[:300]


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    began = time.monotonic()
    checks = {"database": check_database(), "broker": check_broker()}
    failed = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks,
            "duration_ms": round(1000 * (time.monotonic() - began), 1)}
    return JsonResponse(body, status=503 if failed else 200)
