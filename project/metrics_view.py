"""`/metrics`: the Prometheus exposition of monitoring.metrics (and the client's process/platform collectors).

Multiprocess-safe: with PROMETHEUS_MULTIPROC_DIR set (gunicorn workers and Celery worker processes write their
samples there; the directory must be shared by them and emptied at deploy), a fresh registry aggregates every
process's files on each scrape. Without it the process's default registry is exposed. With METRICS_TOKEN set, a
scrape must send `Authorization: Bearer <token>`.
"""
from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

import monitoring.metrics  # noqa: F401 - registers the series, so they are exposed before their first sample


def _registry():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
