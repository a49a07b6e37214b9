"""Production settings pass Django's deployment checklist, and carry no default secret."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def production_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "HTTPS_ONLY", "SECRET_KEY")}
    env.update(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        REDIS_URL="redis://127.0.0.1:6379/0",
        ALLOWED_HOSTS="ledger.example.com",
        **extra,
    )
    return env


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = production_env(
        SECRET_KEY=secrets.token_urlsafe(50),
        METRICS_TOKEN=secrets.token_urlsafe(20),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_without_a_secret_key_do_not_start():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_is_https_only():
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)"
    )
    env = production_env(SECRET_KEY=secrets.token_urlsafe(50), DJANGO_SETTINGS_MODULE="project.settings")
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["True", "True", "True", "True"], result.stderr
