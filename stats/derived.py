"""Figures derived from the stats, refreshed by the recompute job once counters were rewritten.

Per-user cached stats are invalidated by recompute_stats itself (stats.cache.invalidate_on_commit). Cached
leaderboards share one generation key (stats.cache): dropping it makes every board rebuild from the corrected
counters on its next read, whatever cache backend is configured.
"""

from __future__ import annotations

from stats.cache import invalidate_leaderboards


def refresh_derived_figures() -> None:
    invalidate_leaderboards()
