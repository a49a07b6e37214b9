"""`/healthz`: is this process able to do its job? Checks the database and the broker, each on its own short-lived
connection with a short timeout, so a hung dependency gives a 503 within a second instead of a hung probe.

200 with every check's result, or 503 naming the checks that failed (load balancers and orchestrators read the status;
people read the JSON). The endpoint is public: a failed check says only "unavailable"; the exception (which may name
hosts and ports) goes to the log. A process with no broker URL fails the broker check ("not configured"): nothing
runs tasks in process, so without a broker nothing this process saves gets recorded until one is configured.

The database check never uses the request's connection (whose timeouts are sized for requests, and which a hung
server would keep): it opens a fresh one through psycopg's asyncio API under `asyncio.wait_for`, so connect, startup
and `SELECT 1` together are cancelled after HEALTHZ_DB_TIMEOUT_SECONDS. libpq's own connect_timeout counts whole
seconds and at least 2, too coarse for a probe; the server-side statement_timeout is a second bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import psycopg
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

# The checks run side by side, so the answer comes within the longer of the two bounds (0.5 s, 0.4 s) when both hang.
BROKER_TIMEOUT_SECONDS = 0.4
UNAVAILABLE = "unavailable"


def check_database() -> dict:
    try:
        _probe_postgresql(settings.HEALTHZ_DATABASE or connection.settings_dict, settings.HEALTHZ_DB_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return _failed("database", exc)
    return {"ok": True}


def _probe_postgresql(db: dict, timeout: float) -> None:
    statement_ms = max(1, int(1000 * timeout))
    kwargs: dict[str, Any] = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "dbname": db.get("NAME"),
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "connect_timeout": 2,
        "options": f"-c statement_timeout={statement_ms}",
        "application_name": "healthz",
    }

    async def probe() -> None:
        conn = await psycopg.AsyncConnection.connect(**{k: v for k, v in kwargs.items() if v is not None})
        try:
            await conn.execute("SELECT 1")
        finally:
            await conn.close()

    # A fresh event loop per probe: the web runs sync WSGI workers, so no loop is running in this thread.
    asyncio.run(asyncio.wait_for(probe(), timeout))


def check_broker(url: str | None = None) -> dict:
    url = settings.CELERY_BROKER_URL if url is None else url
    if not url:
        return {"ok": False, "detail": "not configured"}
    try:
        if urlsplit(url).scheme in ("redis", "rediss"):
            _ping_redis(url)
        else:
            _connect_kombu(url)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return _failed("broker", exc)
    return {"ok": True}


def _ping_redis(url: str) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One attempt, short timeouts: a health check must answer quickly, never hang on a dead broker.
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        single_connection_client=True,
    )
    try:
        client.ping()
    finally:
        client.close()


def _connect_kombu(url: str) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)


def _failed(check: str, exc: BaseException) -> dict:
    # The public answer names no host, port or user; operators find the cause in the log.
    logger.warning("healthz: %s check failed: %s", check, _describe(exc))
    return {"ok": False, "error": UNAVAILABLE}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "TimeoutError: no answer within the probe's timeout"
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first_line}"[:300]


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as pool:
        broker = pool.submit(check_broker)  # no database in that thread: the database check stays on this one
        checks = {"database": check_database(), "broker": broker.result()}
    failed = [name for name, result in checks.items() if not result["ok"]]
    body = {
        "status": "unavailable" if failed else "ok",
        "failed": failed,
        "checks": checks,
        "duration_ms": round(1000 * (time.monotonic() - began), 1),
    }
    return JsonResponse(body, status=503 if failed else 200)
