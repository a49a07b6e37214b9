"""dispatch is the one owner of publishing: every task name reaches its queue on a real broker, a dead or hung broker
fails fast with one timeout per pause, publish-on-commit follows the transaction; and the code keeps it so (no
in-process switch, no Celery below tasks/, tasks/ one-way)."""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import transaction
from django.test import override_settings

from dispatch.names import Queue, TaskName, queue_of
from dispatch.publish import PublishFailed, broker_paused, publish, publish_on_commit, reset_pause
from tests.private_services import BlackHoleListener, PrivateRedis, broker_at, free_port

ROOT = Path(__file__).resolve().parent.parent


def queued_tasks(server: PrivateRedis, queue: Queue) -> list[tuple[str, list]]:
    """(task name, args) of the messages waiting in one queue of the private broker, oldest first."""
    client = redis.Redis(port=server.port, socket_timeout=2)
    try:
        messages = [json.loads(raw) for raw in client.lrange(queue.value, 0, -1)]
    finally:
        client.close()
    return [
        (m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in reversed(messages)
    ]  # kombu LPUSHes, workers BRPOP: the tail is the oldest


@pytest.fixture
def private_broker(monkeypatch):
    with PrivateRedis() as server, broker_at(monkeypatch, server.url):
        yield server


# --- publishing on a real broker ------------------------------------------------------------------------------------


def test_every_task_name_is_published_to_its_own_queue_on_the_real_broker(private_broker):
    for i, name in enumerate(TaskName):
        publish(name, args=(i,))
    for queue in Queue:
        expected = [(name.value, [i]) for i, name in enumerate(TaskName) if queue_of(name) is queue]
        assert queued_tasks(private_broker, queue) == expected, queue
    assert {queue_of(name) for name in TaskName} == set(Queue)  # both queues are really exercised


def test_a_name_that_is_not_a_task_is_refused_before_anything_is_sent(private_broker) -> None:
    with pytest.raises(ValueError):
        publish("tasks.recording.record_source_chnage")  # type: ignore[arg-type]  # the mistake under test
    assert all(queued_tasks(private_broker, queue) == [] for queue in Queue)


def test_without_a_broker_url_a_publish_fails_at_once_and_starts_no_connection():
    with override_settings(CELERY_BROKER_URL=""):
        started = time.monotonic()
        with pytest.raises(PublishFailed, match="no broker configured"):
            publish(TaskName.CATCH_UP)
        assert time.monotonic() - started < 0.05


# --- a dead broker: fail fast, one timeout per pause ------------------------------------------------------------------


def test_a_refused_connection_fails_fast_and_starts_the_pause(monkeypatch):
    with broker_at(monkeypatch, f"redis://127.0.0.1:{free_port()}/0"):
        started = time.monotonic()
        with pytest.raises(PublishFailed):
            publish(TaskName.RECORD_SOURCE_CHANGE, args=("tournaments.match", 1))
        assert time.monotonic() - started < 1.0
        assert broker_paused()


def test_a_hung_broker_costs_one_socket_timeout_per_pause(monkeypatch, settings):
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"]
    with BlackHoleListener() as hung, broker_at(monkeypatch, f"redis://127.0.0.1:{hung.port}/0"):
        started = time.monotonic()
        with pytest.raises(PublishFailed):
            publish(TaskName.RECORD_SOURCE_CHANGE, args=("tournaments.match", 1))
        first = time.monotonic() - started
        attempts = hung.accepted

        started = time.monotonic()
        for pk in range(2, 12):  # a request saving ten more rows during the pause
            with pytest.raises(PublishFailed, match="failed under"):
                publish(TaskName.RECORD_SOURCE_CHANGE, args=("tournaments.match", pk))
        during_pause = time.monotonic() - started

        reset_pause()  # the pause is over: the next publish tries the broker again
        with pytest.raises(PublishFailed):
            publish(TaskName.RECORD_SOURCE_CHANGE, args=("tournaments.match", 12))
    assert timeout * 0.8 <= first < timeout * 8, first  # it waited for the socket timeout, once, no retries
    assert attempts == 1
    assert during_pause < 0.05, during_pause  # no connection attempt at all while paused
    assert hung.accepted == 2


# --- publish on commit ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_publish_on_commit_publishes_after_the_commit_and_not_before(private_broker):
    with transaction.atomic():
        publish_on_commit(TaskName.CATCH_UP, args=(1,), recovery="test")
        assert queued_tasks(private_broker, Queue.EVENTS) == []  # a worker must not see it before the commit
    assert queued_tasks(private_broker, Queue.EVENTS) == [(TaskName.CATCH_UP.value, [1])]


@pytest.mark.django_db(transaction=True)
def test_publish_on_commit_publishes_nothing_when_the_transaction_rolls_back(private_broker):
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_on_commit(TaskName.CATCH_UP, args=(2,), recovery="test")
        raise RuntimeError("the request failed")
    publish_on_commit(TaskName.RECOMPUTE_STALE, recovery="test")  # autocommit: at once
    assert queued_tasks(private_broker, Queue.EVENTS) == []
    assert queued_tasks(private_broker, Queue.MAINTENANCE) == [(TaskName.RECOMPUTE_STALE.value, [])]


@pytest.mark.django_db(transaction=True)
def test_publish_on_commit_with_the_broker_down_logs_what_recovers_it_and_never_raises(monkeypatch, caplog):
    with broker_at(monkeypatch, f"redis://127.0.0.1:{free_port()}/0"), transaction.atomic():
        publish_on_commit(TaskName.RECOMPUTE_STALE, kwargs={"k": 1}, recovery="the periodic job recomputes them")
    assert any(
        "tasks.reconciliation.recompute_stale not published" in r.getMessage()
        and "the periodic job recomputes them" in r.getMessage()
        for r in caplog.records
    )


# --- the code keeps it so ---------------------------------------------------------------------------------------------


def production_files() -> list[Path]:
    """The project's own .py files but tests, benchmarks and migrations (never descending into the venv or dot dirs)."""
    skip = {"tests", "bench", "migrations", "node_modules", "staticfiles"}
    found = []
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = [d for d in subdirs if d not in skip and not d.startswith(".")]
        found += [Path(directory) / f for f in files if f.endswith(".py")]
    return sorted(found)


CELERY_ALLOWED = ("tasks/", "dispatch/", "project/celery.py")
IN_PROCESS_SWITCHES = re.compile(r"TASKS_IN_PROCESS|ALWAYS_EAGER|task_always_eager|ACTIVITY_RECORDING")
PUBLISH_CALLS = re.compile(r"\b(send_task|apply_async)\(")
CELERY_IMPORT = re.compile(r"^\s*(import celery\b|from celery\b)", re.MULTILINE)


def test_no_production_module_has_an_in_process_switch_or_publishes_around_dispatch():
    files = production_files()
    assert len(files) > 50 and any(p.as_posix().endswith("tasks/enqueue.py") for p in files)  # the scan sees the code
    offences = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        offences += [f"{rel}: {m.group(0)}" for m in IN_PROCESS_SWITCHES.finditer(text)]
        if not rel.startswith("dispatch/"):
            offences += [f"{rel}: {m.group(0)}" for m in PUBLISH_CALLS.finditer(text)]
        if not rel.startswith(CELERY_ALLOWED):
            offences += [f"{rel}: {m.group(0).strip()}" for m in CELERY_IMPORT.finditer(text)]
    assert offences == []


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (absolute names; `from a import b` counts as a and a.b), at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_nothing_below_tasks_imports_tasks():
    offences = [
        f"{module_name(p)} imports {name}"
        for p in production_files()
        if p.relative_to(ROOT).parts[0] in {"activity", "stats", "esports", "web", "dispatch"}
        for name in imports_of(p)
        if name == "tasks" or name.startswith("tasks.")
    ]
    assert offences == []


# audit may be called from every layer (the economy service, the ledger's erasure, the projection's repairs), so it
# imports none of them: Django, and of the project only the leaf modules below.
AUDIT_MAY_IMPORT = {"monitoring", "monitoring.metrics", "project.progress"}
PROJECT_PACKAGES = {"activity", "stats", "esports", "tasks", "web", "dispatch", "project", "monitoring"}


def test_audit_imports_no_layer_of_the_project_so_every_layer_may_call_it():
    files = [p for p in production_files() if p.relative_to(ROOT).parts[0] == "audit"]
    assert any(p.name == "services.py" for p in files)
    offences = [
        f"{module_name(p)} imports {name}"
        for p in files
        for name in imports_of(p)
        if name.split(".")[0] in PROJECT_PACKAGES
        and name not in AUDIT_MAY_IMPORT
        and not name.startswith("project.progress.")
    ]
    assert offences == []


def test_tasks_modules_depend_one_way_enqueue_recording_batching_without_cycles():
    modules = {module_name(p): p for p in (ROOT / "tasks").rglob("*.py") if "migrations" not in p.parts}
    graph = {name: {i for i in imports_of(path) if i in modules and i != name} for name, path in modules.items()}
    assert "tasks.enqueue" not in graph["tasks.recording"]
    assert not graph["tasks.batching"] & {"tasks.recording", "tasks.enqueue"}
    assert "tasks.recording" in graph["tasks.enqueue"] and "tasks.batching" in graph["tasks.recording"]  # the chain

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph[start])

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert cycles == []


def test_the_graph_checks_see_a_cycle_when_there_is_one(tmp_path):
    """The import scan is not blind: a file importing its importer is reported as such."""
    a = tmp_path / "a.py"
    a.write_text("from tasks import recording\n\ndef f():\n    from tasks.enqueue import enqueue_source_change\n")
    assert {"tasks.recording", "tasks.enqueue", "tasks.enqueue.enqueue_source_change"} <= imports_of(a)


def module_imports(path: Path, modules: set[str]) -> set[str]:
    """The application modules a file imports at any depth (type-only imports included). `from pkg import sub` is an
    edge to `pkg.sub` alone: importing a submodule initialises its package in any case, and a package's __init__
    re-exporting its own submodules is not a cycle."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found |= subs if len(subs) == len(node.names) else subs | {node.module}
    own = module_name(path)
    return {m for m in found & modules if m != own and not (path.name == "__init__.py" and m.startswith(own + "."))}


def import_cycles(root_files: list[Path]) -> list[list[str]]:
    modules = {module_name(p): p for p in root_files}
    graph = {name: module_imports(path, set(modules)) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return cycles


def test_no_import_cycles_anywhere_in_the_application():
    assert import_cycles(production_files()) == []


def test_the_cycle_check_finds_a_cycle_through_a_type_only_import(monkeypatch, tmp_path):
    package = tmp_path / "activity"
    package.mkdir()
    (package / "__init__.py").write_text("from activity.one import x\n")  # re-exporting: not a cycle
    (package / "one.py").write_text("from activity import two\nx = 1\n")
    (package / "two.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from activity.one import x\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert import_cycles(sorted(package.glob("*.py"))) == [["activity.one", "activity.two"]]
