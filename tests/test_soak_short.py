"""The short soak: real traffic processes, a SIGKILLed worker, a Redis outage and a mid-run reconciliation, then the
promise checked against the final source tables: 0 missing, 0 duplicated, 0 drift, 0 request errors.

bench/soak.py is the full version (10 minutes at 200 changes/s by default); this runs it scaled down.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_short_soak_keeps_the_promise_through_worker_kills_and_a_redis_outage(tmp_path):
    figures_file = tmp_path / "soak.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--duration",
            "30",
            "--rate",
            "20",
            "--processes",
            "2",
            "--kill-every",
            "10",
            "--redis-outage",
            "5",
            "--sweep-every",
            "5",
            "--sweep-grace",
            "2",
            "--settle-timeout",
            "240",
            "--database",
            "activity_soak_ci",
            "--json",
            str(figures_file),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = result.stdout[-4000:] + result.stderr[-2000:]
    assert figures_file.exists(), report
    figures = json.loads(figures_file.read_text())
    assert figures["source_changes"] > 300, report
    assert figures["worker_kills"] >= 2 and figures["redis_outage_s"] == 5, report
    assert figures["settled"], report
    assert (figures["missing"], figures["duplicated"], figures["users_drifted"], figures["request_errors"]) == (
        0,
        0,
        0,
        0,
    ), report
    assert result.returncode == 0, report
