"""The pure tests (derivation rules, import-graph and grep guards) run with no PostgreSQL or Redis at all; a test that
needs them says so instead of failing on a connection error."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_pytest(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "CACHE_URL")}
    # Port 1 answers nothing: any test reaching for the database would fail.
    env.update(DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere", SECRET_KEY="test-only", HTTPS_ONLY="0")
    command = [sys.executable, "-m", "pytest", "-q", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_pure_tests_pass_with_no_database_and_no_broker():
    result = run_pytest("tests/test_derivation_rules.py")
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "error" not in result.stdout.splitlines()[-1]


def test_a_database_test_without_the_services_fails_saying_what_to_do():
    result = run_pytest("tests/test_dispatch.py::test_publish_on_commit_publishes_after_the_commit_and_not_before")
    assert result.returncode != 0
    assert "this test runs against real PostgreSQL and Redis: use `make test`" in result.stdout
