from django.contrib import admin
from django.urls import include, path

from project.health import healthz
from project.metrics_view import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("", include("web.urls")),  # player pages, /api/ (JSON + OpenAPI schema), sign-in
]
