"""Reading a run's committed progress: percent, rate, ETA, per source and per lane (the admin, the command, the API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from activity.models import BackfillLane, BackfillRun


@dataclass(frozen=True)
class SourceProgress:
    label: str
    total: int
    done: int
    events: int
    by_type: dict[str, int]

    @property
    def percent(self) -> float:
        return 100.0 if not self.total else min(100.0, 100.0 * self.done / self.total)


@dataclass(frozen=True)
class LaneProgress:
    lane: int
    status: str
    source: str
    cursor: int
    chunks: int
    rows: int
    events: int
    last_error: str

    @property
    def finished(self) -> bool:
        return self.status == BackfillLane.Status.DONE


@dataclass(frozen=True)
class Progress:
    run_id: int
    status: str
    dry_run: bool
    percent: float
    rows_done: int
    rows_total: int
    events: int
    events_per_second: float
    elapsed_seconds: float
    eta_seconds: float | None
    sources: tuple[SourceProgress, ...]
    lanes: tuple[LaneProgress, ...]
    last_error: str

    @property
    def by_type(self) -> dict[str, int]:
        """Events created (for a dry run: that would be) per event type, all sources together."""
        total: dict[str, int] = {}
        for source in self.sources:
            for event_type, n in source.by_type.items():
                total[event_type] = total.get(event_type, 0) + n
        return dict(sorted(total.items()))

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("sources", "lanes")}
        data["by_type"] = self.by_type
        data["sources"] = [{**s.__dict__, "percent": round(s.percent, 2)} for s in self.sources]
        data["lanes"] = [{**lane.__dict__, "finished": lane.finished} for lane in self.lanes]
        data["percent"] = round(self.percent, 2)
        return data


def progress_of(run: BackfillRun) -> Progress:
    """Percent, rate and ETA of a run, computed from its committed state (its lanes read in one query, or from a
    prefetch of `lane_rows`)."""
    sources = tuple(
        SourceProgress(label, p.get("total", 0), p.get("done", 0), p.get("events", 0), dict(p.get("by_type", {})))
        for label, p in ((label, run.progress.get(label, {})) for label in run.sources)
    )
    lanes = tuple(
        LaneProgress(
            row.lane,
            row.status,
            row.source,
            row.cursor,
            row.chunks_done,
            row.rows_done,
            row.events_created,
            row.last_error,
        )
        for row in run.lane_rows.all()
    )
    total = max(run.rows_total, 0)
    elapsed = elapsed_seconds(run)
    return Progress(
        run.pk,
        run.status,
        run.dry_run,
        percent_of(run),
        run.rows_done,
        total,
        run.events_created,
        run.rate,
        elapsed,
        eta_of(run, elapsed),
        sources,
        lanes,
        run.last_error,
    )


def percent_of(run: BackfillRun) -> float:
    total = max(run.rows_total, 0)
    return (
        100.0 if run.status == BackfillRun.Status.SUCCEEDED or not total else min(100.0, 100.0 * run.rows_done / total)
    )


def elapsed_seconds(run: BackfillRun) -> float:
    end = run.finished_at or (run.heartbeat_at if run.started_at else None)
    return (end - run.started_at).total_seconds() if (run.started_at and end) else 0.0


def eta_of(run: BackfillRun, elapsed: float | None = None) -> float | None:
    """Seconds to go at the rate so far; None when not running or nothing is done yet."""
    elapsed = elapsed_seconds(run) if elapsed is None else elapsed
    if not (run.is_active and elapsed > 0 and run.rows_done):
        return None
    return max(run.rows_total - run.rows_done, 0) / (run.rows_done / elapsed)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
