"""Which database and task backend this process runs on, in one line for the commands that use them."""
from django.conf import settings


def describe_backends() -> str:
    db = settings.DATABASES["default"]
    if settings.DATABASE_BACKEND == "sqlite":
        where = db["NAME"]
    else:
        where = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db['NAME']}"
    if settings.TASKS_IN_PROCESS:
        tasks = "in-process (embedded default)"
    else:
        tasks = f"Celery via {_redacted(settings.CELERY_BROKER_URL)}"
    return f"database: {settings.DATABASE_BACKEND} ({where}); tasks: {tasks}; recording: {settings.ACTIVITY_RECORDING}"


def _redacted(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
