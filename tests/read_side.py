"""Helpers of the read-side tests (privacy, pagination, cache, leaderboards, pages, API, export/erasure).

Events are put into the ledger through the one append path (activity.append.append, which also applies the stats
projection), with synthetic source ids: the read side only ever sees ledger rows, so a test can state exactly which
rows exist (visibility, timestamps, ties) without building the source rows that would derive them.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from activity.append import append
from activity.derivation import MATCH, Derivation
from activity.event_types import COIN_EVENTS
from activity.event_types import EventType as E
from activity.events import NewEvent
from activity.projection import InsertedEvent
from activity.recording import record_events_for
from activity.sources import SOURCES
from esports.economy import services as economy
from esports.tournaments.models import Match, TournamentResult
from tests.factories import (
    AchievementFactory,
    FollowFactory,
    MatchFactory,
    RegistrationFactory,
    TeamFactory,
    TeamMembershipFactory,
    TournamentFactory,
    UserAchievementFactory,
    UserFactory,
    complete_match,
)

_source_ids = itertools.count(1_000_000)
# Keyed by plain str: the events here are named by their string values (EventType members are strs).
_LABELS: dict[str, str] = {
    E.COINS_EARNED: "economy.deltacrowntransaction",
    E.COINS_SPENT: "economy.deltacrowntransaction",
    E.ACHIEVEMENT_UNLOCKED: "achievements.userachievement",
    E.TEAM_CREATED: "teams.team",
    E.TEAM_JOINED: "teams.teammembership",
    E.TEAM_LEFT: "teams.teammembership",
    E.PROFILE_CREATED: "profiles.userprofile",
}
BASE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.get_current_timezone())


def uid(user) -> int:
    return user if isinstance(user, int) else user.pk


def event(
    user,
    event_type: str,
    *,
    at: datetime | None = None,
    visibility: str = "",
    meta: dict | None = None,
    amount: int | None = None,
    source_model: str | None = None,
    source_id: int | None = None,
    seq: int = 1,
    season: int | None = None,
) -> NewEvent:
    if amount is None and event_type in COIN_EVENTS:
        amount = 100
    label = source_model or _LABELS.get(
        event_type, MATCH if event_type.startswith("match") else "tournaments.tournamentresult"
    )
    metadata = (
        {"tournament_id": 1, "tournament": "Spring Cup", "game": "valorant", "round": "QF"} if meta is None else meta
    )
    return NewEvent(
        uid(user),
        event_type,
        at or timezone.now(),
        label,
        source_id if source_id is not None else next(_source_ids),
        metadata,
        amount=amount,
        seq=seq,
        visibility=visibility,
        # A tournament event carries its tournament's game (and season) as columns, as the derivation sets them.
        game=str(metadata["game"]) if metadata.get("game") else None,
        season=season if metadata.get("game") else None,
    )


def record(*events: NewEvent) -> list[InsertedEvent]:
    """Append the events (and project them) in one call; returns what was inserted."""
    return append([Derivation(e.source_model, e.source_id, (e,)) for e in events]).inserted


def known_game(game: str, season: int | None = None) -> str:
    """Make `game` (in `season`) a game the platform plays (a tournament in it): boards 404 for any other."""
    from esports.tournaments.models import Tournament

    if not Tournament.objects.filter(game=game, **({} if season is None else {"season": season})).exists():
        Tournament.objects.create(name=f"{game} cup", game=game, season=season, status=Tournament.Status.ONGOING)
    return game


def play_match(
    user,
    outcome: str,
    *,
    at: datetime | None = None,
    game: str = "valorant",
    visibility: str = "",
    tournament: str = "Spring Cup",
    round: str = "QF",
    season: int | None = None,
) -> int:
    """Record one match of `user` (won, lost or forfeit) as the derivation would; returns the match's source id."""
    known_game(game, season)
    source_id = next(_source_ids)
    meta = {"tournament_id": 1, "tournament": tournament, "game": game, "round": round}
    rows = [event(user, E.MATCH_PLAYED, at=at, meta=meta, source_id=source_id, visibility=visibility, season=season)]
    if outcome in ("won", "lost"):
        rows.append(
            event(
                user,
                E.MATCH_WON if outcome == "won" else E.MATCH_LOST,
                at=at,
                meta=meta,
                source_id=source_id,
                visibility=visibility,
                season=season,
            )
        )
    record(*rows)
    return source_id


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def _record_everything() -> None:
    for label, kind in SOURCES.items():
        ids = list(kind.model._default_manager.values_list("pk", flat=True))
        if ids:
            record_events_for(label, ids)


def build_platform_history():
    """A small platform: solo and team tournaments, a dispute-free match, a forfeit, a result, coins, an achievement,
    a team named after Alice, follows; every event recorded through the real recording path."""
    alice = UserFactory(username="alice_w", first_name="Alice", last_name="Wonder", email="alice@example.com")
    bob, carol = UserFactory(username="bobby_b"), UserFactory(username="carol_c")
    cup = TournamentFactory(name="Spring Cup", game="valorant")
    regs = {u.pk: RegistrationFactory(tournament=cup, user=u) for u in (alice, bob, carol)}
    complete_match(
        MatchFactory(tournament=cup, round="SF", participant1=regs[alice.pk], participant2=regs[bob.pk]), regs[alice.pk]
    )
    forfeit = MatchFactory(tournament=cup, round="QF", participant1=regs[alice.pk], participant2=regs[carol.pk])
    forfeit.state, forfeit.completed_at = Match.State.FORFEIT, timezone.now()
    forfeit.save()
    TournamentResult.objects.create(tournament=cup, winner=regs[alice.pk], runner_up=regs[bob.pk])

    team = TeamFactory(name="Alice's Wonderland", created_by=alice)
    TeamMembershipFactory(team=team, user=alice)
    TeamMembershipFactory(team=team, user=carol)
    league = TournamentFactory(name="Summer League", game="valorant")
    team_entry = RegistrationFactory(tournament=league, user=None, team=team)
    bob_entry = RegistrationFactory(tournament=league, user=bob)
    complete_match(
        MatchFactory(tournament=league, round="F", participant1=team_entry, participant2=bob_entry), team_entry
    )

    # Through the economy service, as money moves in production: the wallet's balance and lifetimes follow.
    economy.credit(alice, 500, "Prize for Spring Cup")
    economy.debit(alice, 120, "Gift from alice_w to bobby_b")
    UserAchievementFactory(user=alice, achievement=AchievementFactory(code="first-blood", name="First Blood"))
    FollowFactory(follower=alice, followee=bob)
    FollowFactory(follower=carol, followee=alice)
    _record_everything()
    return alice, bob, carol


@pytest.fixture
def fresh_cache(settings):
    """The configured cache (Redis under `make test`) with a key prefix of its own: no value from another test or
    an earlier run (ids restart with every test database) can be served."""
    config = dict(settings.CACHES["default"])
    config["KEY_PREFIX"] = f"test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {"default": config}
    yield config
