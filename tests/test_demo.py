"""`make demo` in a fresh copy of the checkout, with DATABASE_URL/REDIS_URL unset and no pg_ctl/redis-server on PATH:
it runs on the embedded stack through a real worker, and a second run changes nothing."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.private_services import free_port
from tests.test_embedded import embedded_dir

ROOT = Path(__file__).resolve().parent.parent
ATP = (
    Path("/work/shared/data/atp") if Path("/work/shared/data/atp").exists() else ROOT.parent / "shared" / "data" / "atp"
)
SERVER_BINARIES = re.compile(r"^(pg_|postgres|psql|initdb|redis-)")

pytestmark = pytest.mark.slow

# Loaded by every Python process of the run via PYTHONPATH; active only in `manage.py demo` itself. It counts that
# process's own INSERTs: into the ledger (must be none: the worker records) and into matches (the season's saves, so
# a tripwire that sees nothing cannot pass for a clean run).
TRIPWIRE = """
import atexit, json, os, sys
if sys.argv[0].endswith("manage.py") and sys.argv[1:2] == ["demo"]:
    from django.db.backends.signals import connection_created
    seen = {"ledger_inserts": 0, "match_inserts": 0}

    def watch(execute, sql, params, many, context):
        text = str(sql).lower()
        if text.lstrip().startswith("insert"):
            if "activity_useractivity" in text:
                seen["ledger_inserts"] += 1
            if '"tournaments_match"' in text:
                seen["match_inserts"] += 1
        return execute(sql, params, many, context)

    def install(sender, connection, **kwargs):
        connection.execute_wrappers.append(watch)

    connection_created.connect(install, weak=False)
    atexit.register(lambda: open(os.environ["TRIPWIRE_FILE"], "w").write(json.dumps(seen)))
"""

PAGES = """
from django.contrib.auth import get_user_model
from django.test import Client
from activity.models import UserActivity
from esports.profiles.models import UserProfile
from stats.selectors.leaderboards import Board
from tasks.demo_season import demo_season_champion

profile = UserProfile.objects.select_related("user").get(pk=demo_season_champion())
name, uid, pid = profile.user.username, profile.pk, profile.public_id
boards = [*(f"/leaderboards/?board={board}{game}" for board in Board for game in ("", "&game=tennis")),
          *(f"/api/leaderboards/{board}/{game}" for board in Board for game in ("", "?game=tennis"))]
public = ["/", "/leaderboards/", "/leaderboards/?game=tennis", *boards, f"/p/{pid}/", f"/u/{name}/",
          f"/u/{name}/activity/", f"/u/{name}/matches/", f"/u/{name}/matches/?game=tennis", f"/u/{name}/tournaments/",
          f"/api/users/{uid}/", f"/api/users/{pid}/", f"/api/users/lookup/?username={name}", f"/api/users/{uid}/stats/",
          f"/api/users/{pid}/stats/", f"/api/users/{uid}/activity/", f"/api/users/{uid}/matches/",
          f"/api/users/{uid}/tournaments/", "/api/schema/", "/accounts/login/", "/healthz"]
staff_only = [f"/u/{name}/economy/", f"/u/{name}/export.json", f"/api/users/{uid}/economy/",
              f"/api/users/{uid}/export/", "/admin/", "/admin/activity/backfillrun/", "/admin/stats/reconciliationrun/"]
anonymous, staff = Client(), Client()
staff.force_login(get_user_model().objects.get(username="demo-admin"))
codes = {p: anonymous.get(p, follow=True).status_code for p in public}  # "/" redirects to the boards
codes.update({"staff " + p: staff.get(p, follow=True).status_code for p in staff_only})
print(json.dumps({"codes": codes, "ledger": UserActivity.objects.count(),
                  "season": UserActivity.objects.filter(metadata__tournament="DeltaCrown Demo Cup").count()}))
"""


def _fresh_copy(dest: Path) -> Path:
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def _path_without_servers(bin_dir: Path) -> str:
    """Every program on PATH except the PostgreSQL and Redis server tools, as links in one directory."""
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for entry in Path(directory).glob("*") if Path(directory).is_dir() else ():
            link = bin_dir / entry.name
            if not SERVER_BINARIES.match(entry.name) and not link.exists() and os.access(entry, os.X_OK):
                link.symlink_to(entry)
    return str(bin_dir)


def test_make_demo_runs_on_the_embedded_stack_through_a_real_worker_and_a_second_run_changes_nothing(tmp_path):
    clone = _fresh_copy(tmp_path / "clone")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(TRIPWIRE)
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "REDIS_URL",
            "CELERY_BROKER_URL",
            "CACHE_URL",
            "SECRET_KEY",
            "PYTHONPATH",
            "MAKEFLAGS",
            "MAKELEVEL",
            "MFLAGS",
        )
    }  # run as a fresh shell would, even under `make test`
    env.update(
        PATH=_path_without_servers(tmp_path / "bin"),
        PYTHONPATH=str(tmp_path / "site"),
        TRIPWIRE_FILE=str(tmp_path / "tripwire.json"),
        EMBEDDED_DIR=embedded_dir(),
        EMBEDDED_PG_PORT=str(free_port()),
        EMBEDDED_REDIS_PORT=str(free_port()),
    )
    assert shutil.which("pg_ctl", path=env["PATH"]) is None and shutil.which("redis-server", path=env["PATH"]) is None
    make = [
        "make",
        "demo",
        "INSTALL=",
        f"PY={sys.executable}",
        f"ATP_DIR={ATP}",
        "DEMO_ARGS=--from-year 2024 --to-year 2024",
    ]

    def run(*command: str) -> subprocess.CompletedProcess:
        result = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        return result

    try:
        first = run(*make)
        assert "backends: database: embedded" in first.stderr and "redis: embedded" in first.stderr
        assert (
            first.stdout.splitlines()[0].startswith("Backends — database: postgresql")
            and "tasks: Celery workers via" in first.stdout
        )
        assert "worker drained" in first.stdout and "demo finished" in first.stdout
        assert "staff login (created now): demo-admin / demo-admin-password" in first.stdout
        # Quiet by default: the worker's and beat's records go to log files whose place the demo prints, and the
        # import's progress is a line per season when piped.
        assert " INFO " not in first.stdout + first.stderr and "celery@" not in first.stdout + first.stderr, first
        logs = Path(re.search(r"logs in (\S+)\)", first.stdout).group(1))
        assert (logs / "worker.log").exists() and (logs / "beat.log").exists()
        assert "import_atp: seasons: 1/1  season 2024" in first.stdout
        watched = json.loads((tmp_path / "tripwire.json").read_text())
        assert watched["match_inserts"] > 0 and watched["ledger_inserts"] == 0, watched

        check = [
            sys.executable,
            "-m",
            "project.embedded",
            "run",
            "--",
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "import json\n" + PAGES,
        ]
        env["DEBUG"] = "1"
        after_first = json.loads(run(*check).stdout.strip().splitlines()[-1])
        del env["DEBUG"]
        assert len(after_first["codes"]) > 40
        # Coins carry no game: the one board without a per-game view says so (400), every other address answers 200.
        assert {p: code for p, code in after_first["codes"].items() if code != 200} == {
            "/leaderboards/?board=total_earned&game=tennis": 400,
            "/api/leaderboards/total_earned/?game=tennis": 400,
        }
        assert after_first["season"] > 0  # the demo season's events: written, and not by the demo process

        second = run(*make)
        assert "not replayed" in second.stdout and "already done by run" in second.stdout
        assert "created by an earlier run" in second.stdout
        env["DEBUG"] = "1"
        after_second = json.loads(run(*check).stdout.strip().splitlines()[-1])
        assert (after_second["ledger"], after_second["season"]) == (after_first["ledger"], after_first["season"])
    finally:
        subprocess.run([sys.executable, "-m", "project.embedded", "stop"], cwd=clone, env=env, timeout=120)
        shutil.rmtree(env["EMBEDDED_DIR"], ignore_errors=True)
