from django.contrib import admin
from django.urls import include, path

from audit.views import audit_events_export
from project.health import healthz
from project.metrics_view import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("api/audit/events", audit_events_export, name="audit-events-export"),  # staff only, JSONL
    path("", include("web.urls")),  # player pages, /api/ (JSON + OpenAPI schema), sign-in
]
