"""`python manage.py recompute_ratings [--game G] [--from DATE] [--dry-run] [--chunk-size N]`.

Replays the ratings of one game (or every game) through the same replay code the maintenance task runs: from the
start, or from the first match on or after DATE. --dry-run writes nothing: it folds the ledger afresh and reports the
players whose stored rating, peak or count would change.
"""

from __future__ import annotations

from argparse import ArgumentTypeError
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from project.progress import progress
from stats.ratings.check import compare, fresh_fold, rated_games
from stats.ratings.replay import CHUNK_SIZE, ReplayResult, request_replay, run_replay
from stats.ratings.rules import KEY_MIN, key_from_date


def _date(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(f"expected a date such as 2019-01-31, got {value!r}") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _positive(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


class Command(BaseCommand):
    help = "Replay Elo ratings from the ledger (all games, or one), from the start or from a date; or dry-run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--game", default=None, help="only this game (default: every game with tournaments)")
        parser.add_argument("--from", dest="from_date", type=_date, default=None, help="replay from this date on")
        parser.add_argument("--dry-run", action="store_true", help="report what a replay would change, write nothing")
        parser.add_argument("--chunk-size", type=_positive, default=CHUNK_SIZE, help="matches per transaction")

    def handle(self, *args, **options) -> None:
        games = rated_games()
        if options["game"] is not None:
            if options["game"] not in games:
                raise CommandError(f"no tournaments of game {options['game']!r} (known: {', '.join(games) or 'none'})")
            games = [options["game"]]
        verbosity = options["verbosity"]
        if options["dry_run"]:
            changed = 0
            for game in games:
                checked, drift = compare(game, fresh_fold(game), None)
                changed += len(drift)
                self.stdout.write(f"{game}: {checked} player(s) compared, {len(drift)} would change")
            self.stdout.write(f"dry run: {changed} rating(s) would change, nothing written")
            return
        position = KEY_MIN if options["from_date"] is None else key_from_date(options["from_date"])
        for game in games:
            request_replay(game, position)
            with progress(total=None, desc=f"recompute_ratings {game}", stream=self.stdout, verbosity=verbosity) as bar:

                def step(result: ReplayResult) -> None:
                    bar.update(1, note=f"{result.matches:,} rated match(es) folded")

                result = run_replay(game, chunk_size=options["chunk_size"], on_chunk=step)
            if not result.ran:
                raise CommandError(f"{game}: another replay of this game is running; its marks will be taken by it")
            self.stdout.write(
                f"{game}: {result.matches:,} rated match(es) in {result.chunks} chunk(s), {result.seconds:.2f} s"
            )
