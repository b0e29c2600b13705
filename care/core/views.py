"""Project-wide endpoints: the health check used by deployments and `make run`."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from redis import Redis
from redis.exceptions import RedisError


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report whether PostgreSQL and Redis answer; 503 when either does not."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not healthy"
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        Redis.from_url(settings.CACHE_URL, socket_timeout=1).ping()
        checks["redis"] = "ok"
    except RedisError as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )
