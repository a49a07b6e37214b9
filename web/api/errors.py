"""One JSON error shape for the whole API: {"error": <code>, "detail": <message>[, "fields": {...}]}.

Read-side errors map to 4xx here (unknown player 404, bad parameter or cursor 400, private surface 401/403), so
no bad input can surface as a 500.
"""

from __future__ import annotations

from django.http import HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from activity.privacy import NotPermitted
from activity.selectors.errors import InvalidQueryError, SubjectNotFound


def error_response(http_status: int, code: str, detail: str, **extra) -> Response:
    return Response({"error": code, "detail": detail, **extra}, status=http_status)


def api_exception_handler(exc, context):
    request = context.get("request")
    if isinstance(exc, SubjectNotFound):
        return error_response(status.HTTP_404_NOT_FOUND, "not_found", str(exc))
    if isinstance(exc, InvalidQueryError):
        return error_response(status.HTTP_400_BAD_REQUEST, exc.code, str(exc))
    if isinstance(exc, NotPermitted):
        if request is not None and not request.user.is_authenticated:
            response = error_response(
                status.HTTP_401_UNAUTHORIZED, "not_authenticated", f"Authentication required. {exc}"
            )
            response["WWW-Authenticate"] = 'Basic realm="api"'
            return response
        return error_response(status.HTTP_403_FORBIDDEN, "permission_denied", str(exc))
    if isinstance(exc, (exceptions.AuthenticationFailed, exceptions.NotAuthenticated)):
        # DRF answers 403 when the first authenticator (session) has no challenge; bad or missing credentials are
        # a 401 with the Basic challenge the API accepts.
        response = error_response(
            status.HTTP_401_UNAUTHORIZED,
            exc.get_codes() if isinstance(exc.get_codes(), str) else "authentication_failed",
            str(exc.detail),
        )
        response["WWW-Authenticate"] = 'Basic realm="api"'
        return response
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        summary = "; ".join(
            f"{name}: {' '.join(str(m) for m in (msgs if isinstance(msgs, list) else [msgs]))}"
            for name, msgs in fields.items()
        )
        return error_response(status.HTTP_400_BAD_REQUEST, "invalid_parameter", summary, fields=fields)
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        code = getattr(response.data["detail"], "code", None) or "error"
        response.data = {"error": str(code), "detail": str(response.data["detail"])}
    return response


def unknown_api_path(request, *args, **kwargs) -> HttpResponse:
    """Any /api/ path no endpoint answers: the API's JSON error shape, not the site's HTML 404 page. A path missing
    only its trailing slash is redirected, as CommonMiddleware's APPEND_SLASH did before this catch-all existed."""
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.url_name != "not-found":
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(request.path + "/" + (f"?{query}" if query else ""))
    return JsonResponse(
        {"error": "not_found", "detail": f"No API endpoint at {request.path[:200]!s}; see /api/docs/."}, status=404
    )
