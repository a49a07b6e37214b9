"""`make demo` runs the main job end to end on the embedded default (SQLite, in-process tasks), from any directory."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ATP = ROOT.parent / "shared" / "data" / "atp"

pytestmark = pytest.mark.slow


def test_demo_runs_to_the_end_on_the_embedded_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env["SQLITE_PATH"] = str(tmp_path / "demo.sqlite3")
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "demo", "--atp-dir", str(ATP), "--from-year", "2024", "--to-year", "2024"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "database: sqlite" in out and "in-process" in out
    assert "Top 10" in out and "demo finished" in out
    assert (tmp_path / "demo.sqlite3").exists()
