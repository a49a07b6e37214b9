"""The rating projection (issue 17): one PlayerRating per (profile, game), the RatingHistory it folds from, and the
replay state of each game as rows (RatingGame, RatingReplayMark), not JSON.

A replay never writes the published rows readers see: it folds into the draft (RatingHistory rows of the game's next
fold, RatingGame.fold + 1, which readers do not read, and RatingDraftRating: the new history from the replay's base
on and the states it reaches), and one short transaction switches the draft in (stats.ratings.store.publish).
Readers therefore see the whole previous fold or the whole new one. A full replay's switch moves no history row: it
makes the draft's fold the published one (RatingGame.fold), so it holds the game's lock for the players' rows only.

Every history row carries its match's order key (at, ext, round rank, match_num, match id) so "the ratings before
position P" and "everything from P on" are index range reads; the key's text part uses the "C" collation so the
database orders it exactly as Python compares str.
"""

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import F, Q


class OrderKeyFields(models.Model):
    """The five columns of a match's position in its game's order (stats.ratings.order)."""

    key_at = models.DateTimeField()
    key_ext = models.CharField(max_length=64, db_collation="C")
    key_round = models.SmallIntegerField()
    key_num = models.BigIntegerField()
    match_id = models.BigIntegerField()

    class Meta:
        abstract = True


class PlayerRating(models.Model):
    """Current Elo of a profile in a game; always equal to what its RatingHistory rows say (rebuilt from them)."""

    profile = models.ForeignKey("profiles.UserProfile", on_delete=models.CASCADE, related_name="ratings")
    game = models.CharField(max_length=50)
    rating = models.FloatField()
    peak = models.FloatField()
    # When the peak was first reached; null while the peak is the starting rating.
    peak_at = models.DateTimeField(null=True, blank=True)
    matches_rated = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "game"], name="rating_unique_profile_game")]
        indexes = [
            # The per-game leaderboard: its whole ORDER BY, filtered by the minimum-matches threshold in the scan.
            models.Index("game", F("rating").desc(), "profile", "matches_rated", name="rating_lb_game_idx"),
            # The same board behind a selective minimum (few players with that many matches): walking the rating
            # order would skip nearly every entry to find them; this reads just the qualifying players and sorts
            # them. The planner picks whichever of the two reads fewer entries from the column's statistics.
            models.Index("game", "matches_rated", F("rating").desc(), "profile", name="rating_lb_min_matches_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} {self.game}: {self.rating:.1f}"


class RatingHistory(OrderKeyFields):
    """One rated match of one profile: its rating before and after. Rewritten from a position on by a replay.

    `fold` is the generation the row belongs to: readers read the rows of the game's published folds
    (RatingGame.fold, and RatingGame.span_fold while a partial replay's span is not merged yet) only; a running
    replay writes its draft as the rows of the next one."""

    # No index of its own: rating_history_profile (profile, game) serves the key's lookups, and a full replay writes
    # every history row of the game through each index.
    profile = models.ForeignKey("profiles.UserProfile", on_delete=models.CASCADE, related_name="+", db_index=False)
    game = models.CharField(max_length=50)
    # Not a foreign key: a deleted match keeps its rows until the replay its deletion triggers removes them (their
    # key tells where that replay starts).
    before = models.FloatField()
    after = models.FloatField()
    at = models.DateTimeField()
    fold = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["match_id", "profile", "fold"], name="rating_history_unique")]
        indexes = [
            # "From position P on" (a replay's cut, the last rated match): rows are written in key order (replays
            # fold in order, live updates append after the last), so a BRIN range index on the key's time serves
            # it at a fraction of a b-tree's cost per insert - a full replay writes every row again.
            BrinIndex(fields=["key_at"], name="rating_history_at_brin"),
            # A player's history (pages, rebuilds after a cut): at most a career of rows, sorted after the read.
            # Two columns, not the whole key: every history row of a full replay is written through this index.
            models.Index(fields=["profile", "game"], name="rating_history_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} match {self.match_id}: {self.before:.1f} -> {self.after:.1f}"


def _key_all_or_none(prefix: str, match_field: str, name: str) -> models.CheckConstraint:
    fields = [f"{prefix}at", f"{prefix}ext", f"{prefix}round", f"{prefix}num", match_field]
    return models.CheckConstraint(
        condition=Q(**{f"{f}__isnull": True for f in fields}) | Q(**{f"{f}__isnull": False for f in fields}),
        name=name,
    )


class RatingGame(models.Model):
    """Replay state of one game (FillState-like). `key_*` is the last match of the published history (what a live
    O(1) update must follow, in both states). While RUNNING, `base_*` is the last published match the replay keeps
    (null: it replaces the whole history) and `cur_*` the replay cursor (the last match folded into the draft; the
    base before the first chunk). Locked FOR UPDATE by the live update, by each replay chunk only to move the cursor
    once the chunk's draft is written (its last statement), and by the switch."""

    class Status(models.TextChoices):
        IDLE = "idle"
        RUNNING = "running"

    game = models.CharField(max_length=50, primary_key=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.IDLE)
    key_at = models.DateTimeField(null=True)
    key_ext = models.CharField(max_length=64, db_collation="C", null=True)  # noqa: DJ001 (null = no cursor, like the others)
    key_round = models.SmallIntegerField(null=True)
    key_num = models.BigIntegerField(null=True)
    match_id = models.BigIntegerField(null=True)
    base_at = models.DateTimeField(null=True)
    base_ext = models.CharField(max_length=64, db_collation="C", null=True)  # noqa: DJ001
    base_round = models.SmallIntegerField(null=True)
    base_num = models.BigIntegerField(null=True)
    base_match_id = models.BigIntegerField(null=True)
    cur_at = models.DateTimeField(null=True)
    cur_ext = models.CharField(max_length=64, db_collation="C", null=True)  # noqa: DJ001
    cur_round = models.SmallIntegerField(null=True)
    cur_num = models.BigIntegerField(null=True)
    cur_match_id = models.BigIntegerField(null=True)
    # The published fold: readers see the game's RatingHistory rows of this fold; a replay drafts fold + 1.
    fold = models.PositiveIntegerField(default=0)
    # A partial replay's switched span (its draft fold), published beside `fold` until merged into it outside the
    # switch (stats.ratings.store.merge_span): the switch then moves no history row either. Null: nothing to merge.
    span_fold = models.PositiveIntegerField(null=True, blank=True)
    replay_started_at = models.DateTimeField(null=True, blank=True)
    replay_chunks = models.PositiveIntegerField(default=0)
    last_replay_seconds = models.FloatField(null=True, blank=True)
    # How long the last replay's switch (draft -> published, in one transaction) held the game's row.
    last_switch_seconds = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            _key_all_or_none("key_", "match_id", "rating_game_key_all_or_none"),
            _key_all_or_none("base_", "base_match_id", "rating_game_base_all_or_none"),
            _key_all_or_none("cur_", "cur_match_id", "rating_game_cur_all_or_none"),
        ]

    def __str__(self) -> str:
        return f"ratings of {self.game}: {self.status}"


class RatingDraftRating(models.Model):
    """A running replay's state of a profile as of its cursor (PlayerRating's columns): the players it folded."""

    profile_id = models.BigIntegerField()
    game = models.CharField(max_length=50)
    rating = models.FloatField()
    peak = models.FloatField()
    peak_at = models.DateTimeField(null=True, blank=True)
    matches_rated = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile_id", "game"], name="rating_draft_unique")]

    def __str__(self) -> str:
        return f"draft {self.profile_id} {self.game}: {self.rating:.1f}"


class RatingReplayMark(OrderKeyFields):
    """A "replay this game from this position" request: appended (no lock taken) by a recording that changed an earlier
    match, a late insert, a deletion, or a batch too large for the O(1) path; consumed by the replay."""

    game = models.CharField(max_length=50)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index("game", "key_at", "key_ext", "key_round", "key_num", "match_id", name="rating_mark_key")
        ]

    def __str__(self) -> str:
        return f"replay {self.game} from match {self.match_id}"
