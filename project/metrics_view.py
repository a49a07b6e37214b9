"""`/metrics`: the Prometheus exposition of monitoring.metrics.

With PROMETHEUS_MULTIPROC_DIR set (every Procfile process runs through scripts/with-metrics-dir; see
project/metrics_dir.py) a fresh registry aggregates the files of every process of the host on each scrape: web's
gunicorn workers, the Celery worker's pool processes, beat and management commands. Without it (local runs) the
process's default registry is exposed, with the client's process/platform collectors.

A scrape must send `Authorization: Bearer <METRICS_TOKEN>`. With DEBUG off and no token configured the endpoint
refuses (403) rather than serve the platform's figures to anyone; `manage.py check --deploy` reports it first.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

import monitoring.metrics  # noqa: F401 - registers the series, so they are exposed before their first sample
from project import metrics_dir

logger = logging.getLogger(__name__)


def _registry():
    path = metrics_dir.configured_dir()
    if path:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        return registry
    return REGISTRY


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        if not settings.DEBUG:
            logger.error("/metrics refused: METRICS_TOKEN is not set (required with DEBUG off)")
            return HttpResponse(
                "metrics are disabled: METRICS_TOKEN is not configured\n", status=403, content_type="text/plain"
            )
    elif not hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        return HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
