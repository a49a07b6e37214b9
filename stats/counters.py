"""The event -> counter mapping, in one place: incremental apply, recompute and reconciliation all read it."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from activity.event_types import REVERSAL_OF
from activity.event_types import EventType as E

COUNTER_FIELDS: tuple[str, ...] = (
    "tournaments_registered",
    "tournaments_played",
    "tournaments_completed",
    "tournaments_won",
    "tournaments_runner_up",
    "tournaments_top4",
    "matches_played",
    "matches_won",
    "matches_lost",
    "total_earned",
    "total_spent",
    "achievements_count",
    "teams_created",
    "teams_joined",
    "current_teams_count",
    "disputes_filed",
    # average_placement = placements_sum / placements_counted: the placements <= 10, which their tournament_placed
    # events carry as amount (activity.derivation.AVERAGE_PLACEMENT_MAX); deeper finishes carry none.
    "placements_counted",
    "placements_sum",
)
# Counters that sum the event's amount instead of counting events.
AMOUNT_FIELDS = frozenset({"total_earned", "total_spent", "placements_sum"})
# Counters that count only the events carrying an amount.
AMOUNT_COUNT_FIELDS = frozenset({"placements_counted"})

# event type -> ((counter, sign), ...). Compensations carry the opposite sign of the event they cancel.
EFFECTS: dict[str, tuple[tuple[str, int], ...]] = {
    E.TOURNAMENT_REGISTERED: (("tournaments_registered", 1),),
    E.TOURNAMENT_REGISTERED_REVERSED: (("tournaments_registered", -1),),
    E.TOURNAMENT_JOINED: (("tournaments_played", 1),),
    E.TOURNAMENT_JOINED_REVERSED: (("tournaments_played", -1),),
    E.TOURNAMENT_COMPLETED: (("tournaments_completed", 1),),
    E.TOURNAMENT_COMPLETED_REVERSED: (("tournaments_completed", -1),),
    E.TOURNAMENT_WON: (("tournaments_won", 1),),
    E.TOURNAMENT_WON_REVERSED: (("tournaments_won", -1),),
    E.TOURNAMENT_RUNNER_UP: (("tournaments_runner_up", 1),),
    E.TOURNAMENT_RUNNER_UP_REVERSED: (("tournaments_runner_up", -1),),
    E.TOURNAMENT_TOP4: (("tournaments_top4", 1),),
    E.TOURNAMENT_TOP4_REVERSED: (("tournaments_top4", -1),),
    E.MATCH_PLAYED: (("matches_played", 1),),
    E.MATCH_PLAYED_REVERSED: (("matches_played", -1),),
    E.MATCH_WON: (("matches_won", 1),),
    E.MATCH_WON_REVERSED: (("matches_won", -1),),
    E.MATCH_LOST: (("matches_lost", 1),),
    E.MATCH_LOST_REVERSED: (("matches_lost", -1),),
    # Coin compensations carry the amount they cancel: AMOUNT_FIELDS sum it with the sign below.
    E.COINS_EARNED: (("total_earned", 1),),
    E.COINS_EARNED_REVERSED: (("total_earned", -1),),
    E.COINS_SPENT: (("total_spent", 1),),
    E.COINS_SPENT_REVERSED: (("total_spent", -1),),
    E.ACHIEVEMENT_UNLOCKED: (("achievements_count", 1),),
    E.ACHIEVEMENT_UNLOCKED_REVERSED: (("achievements_count", -1),),
    E.TEAM_CREATED: (("teams_created", 1),),
    E.TEAM_CREATED_REVERSED: (("teams_created", -1),),
    E.TEAM_JOINED: (("teams_joined", 1), ("current_teams_count", 1)),
    E.TEAM_JOINED_REVERSED: (("teams_joined", -1), ("current_teams_count", -1)),
    E.TEAM_LEFT: (("current_teams_count", -1),),
    E.TEAM_LEFT_REVERSED: (("current_teams_count", 1),),
    E.PROFILE_CREATED: (),
    E.DISPUTE_FILED: (("disputes_filed", 1),),
    E.DISPUTE_FILED_REVERSED: (("disputes_filed", -1),),
    E.TOURNAMENT_PLACED: (("placements_counted", 1), ("placements_sum", 1)),
    E.TOURNAMENT_PLACED_REVERSED: (("placements_counted", -1), ("placements_sum", -1)),
    E.LEVEL_UP: (),
    E.KYC_VERIFIED: (),
}
assert set(EFFECTS) == set(E.values), "every event type needs an entry in EFFECTS"
# A compensation exactly cancels its base event, counter by counter (deletes and corrections rely on it).
assert all(EFFECTS[rev] == tuple((c, -s) for c, s in EFFECTS[base]) for base, rev in REVERSAL_OF.items()), (
    "a reversal must negate its base"
)


K = TypeVar("K", bound=Hashable)


Tallies = dict[tuple[K, str], list[int]]  # (key, event type) -> [events, their amounts' sum, how many carry one]


def tally_by(events: Iterable, key: Callable[[Any], K | None]) -> Tallies[K]:
    """Events counted per (key(event), event type): one dict update per event. A backfill chunk has tens of
    thousands of events but a few thousand distinct (user, type) pairs, so the counters are spread from these."""
    tallies: Tallies[K] = {}
    for event in events:
        k = key(event)
        if k is None:
            continue
        tally = tallies.get((k, event.event_type))
        if tally is None:
            tallies[(k, event.event_type)] = [1, event.amount or 0, 0 if event.amount is None else 1]
        else:
            tally[0] += 1
            tally[1] += event.amount or 0
            tally[2] += 0 if event.amount is None else 1
    return tallies


def regrouped(tallies: Tallies[Any], key: Callable[[Any], K | None]) -> Tallies[K]:
    """Tallies summed onto a coarser key (`key` of the finer one; None leaves a tally out): the same as tallying the
    events by the coarser key, without another pass over them."""
    out: Tallies[K] = {}
    for (fine, event_type), (n, amount, with_amount) in tallies.items():
        k = key(fine)
        if k is None:
            continue
        tally = out.get((k, event_type))
        if tally is None:
            out[(k, event_type)] = [n, amount, with_amount]
        else:
            tally[0] += n
            tally[1] += amount
            tally[2] += with_amount
    return out


def deltas_of(tallies: Tallies[K]) -> dict[K, dict[str, int]]:
    """The counter changes per key of tallied events (EFFECTS: each type's counters and signs)."""
    deltas: dict[K, dict[str, int]] = {}
    for (k, event_type), (n, amount, with_amount) in tallies.items():
        row = deltas.get(k)
        if row is None:
            row = deltas[k] = dict.fromkeys(COUNTER_FIELDS, 0)
        for counter, sign in EFFECTS[event_type]:
            row[counter] += sign * tallied(counter, n, amount, with_amount)
    return deltas


def measure_of(field: str, amount: int | None) -> int:
    """What one event of an effect on `field` contributes before its sign: its amount, 1 when it carries one, or 1."""
    if field in AMOUNT_FIELDS:
        return amount or 0
    if field in AMOUNT_COUNT_FIELDS:
        return 0 if amount is None else 1
    return 1


def tallied(field: str, events: int, amount_sum: int, with_amount: int) -> int:
    """measure_of over a group of events of one type: `events` of them, their amounts summing to `amount_sum`,
    `with_amount` of them carrying one."""
    if field in AMOUNT_FIELDS:
        return amount_sum
    if field in AMOUNT_COUNT_FIELDS:
        return with_amount
    return events


def reads_amount(field: str) -> bool:
    """Whether the counter needs the events' amounts (not only their types)."""
    return field in AMOUNT_FIELDS or field in AMOUNT_COUNT_FIELDS


def grouped_measure(field: str) -> str:
    """The column of rows pre-grouped per event type (`COUNT(*) AS n, SUM(amount) AS amount_sum, COUNT(amount) AS
    amount_n`) that a counter's pivot sums: see counter_sql's `measure`."""
    if field in AMOUNT_FIELDS:
        return "amount_sum"
    if field in AMOUNT_COUNT_FIELDS:
        return "amount_n"
    return "n"


def counter_sql(
    field: str, type_column: str = "event_type", amount_column: str = "amount", measure: str | None = None
) -> str:
    """An SQL aggregate computing one counter over ledger rows: SUM(CASE ... END).

    `measure` replaces what each row contributes (1, or its amount) - e.g. a per-type count over pre-grouped rows."""
    plus = sorted(t for t, effects in EFFECTS.items() if (field, 1) in effects)
    minus = sorted(t for t, effects in EFFECTS.items() if (field, -1) in effects)
    if measure is None:
        if field in AMOUNT_FIELDS:
            measure = f"COALESCE({amount_column}, 0)"
        elif field in AMOUNT_COUNT_FIELDS:
            measure = f"(CASE WHEN {amount_column} IS NULL THEN 0 ELSE 1 END)"
        else:
            measure = "1"
    branches = []
    if plus:
        branches.append(f"WHEN {type_column} IN ({', '.join(quote_event_type(t) for t in plus)}) THEN {measure}")
    if minus:
        branches.append(f"WHEN {type_column} IN ({', '.join(quote_event_type(t) for t in minus)}) THEN -{measure}")
    return f"COALESCE(SUM(CASE {' '.join(branches)} ELSE 0 END), 0)"


def quote_event_type(event_type: str) -> str:
    """An event type as an SQL string literal (a closed vocabulary, never user input)."""
    assert event_type.replace("_", "").isalnum()  # closed vocabulary; never user input
    return f"'{event_type}'"
