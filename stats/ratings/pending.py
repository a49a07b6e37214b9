"""The maintenance job: carry out every game's pending replay (marks left by recordings, or a replay interrupted by
a dead worker, whose RUNNING state and cursor let it resume), and publish the replay-lag metric."""

from __future__ import annotations

from django.db.models import Min
from django.utils import timezone

from monitoring import metrics
from stats.ratings.models import RatingGame, RatingReplayMark
from stats.ratings.replay import ReplayResult, run_replay


def replay_lag_seconds() -> float:
    """Age of the oldest mark not taken yet (0 when none): how long a correction waits to show in the ratings."""
    oldest = RatingReplayMark.objects.aggregate(at=Min("created_at"))["at"]
    return 0.0 if oldest is None else max((timezone.now() - oldest).total_seconds(), 0.0)


def games_with_a_replay_pending() -> list[str]:
    """The games a recording marked for a replay, or whose replay is running: their ratings are behind their ledger."""
    marked = set(RatingReplayMark.objects.values_list("game", flat=True).distinct())
    running = set(RatingGame.objects.filter(status=RatingGame.Status.RUNNING).values_list("game", flat=True))
    return sorted(marked | running)


def replay_pending_games() -> list[ReplayResult]:
    metrics.RATING_REPLAY_LAG.set(replay_lag_seconds())
    results = [run_replay(game) for game in games_with_a_replay_pending()]
    metrics.RATING_REPLAY_LAG.set(replay_lag_seconds())
    return results
