"""The backfill's fast path (issue 19): column-only loaders feeding the same rules, array-literal columns, lock
granules, a big batch's rating marks. Each test pins one mechanism to the behaviour it must keep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity import derivation as rules
from activity.append import append
from activity.derivation import Derivation
from activity.event_types import EventType as E
from activity.events import InvalidEventError, NewEvent
from activity.models import UserActivity
from activity.recording import LOCK_GRANULE, record_events_for
from activity.sources import source_kind
from esports.teams.models import TeamMembership
from esports.tournaments.models import Match, Registration, Tournament
from stats.ratings.live import LIVE_BATCH_MAX
from stats.ratings.models import RatingReplayMark
from stats.scoped_models import UserGameStats
from tests.backfill_support import history_mode, make_history  # noqa: F401 - fixture
from tests.factories import (
    MatchFactory,
    RegistrationFactory,
    TeamFactory,
    TeamMembershipFactory,
    TournamentFactory,
    UserFactory,
)

MATCH, REGISTRATION = rules.MATCH, rules.REGISTRATION


def _model_derivations(label: str, ids: list[int]) -> list[Derivation]:
    """The same rules over model instances, as the loaders fed them before (the reference)."""
    if label == REGISTRATION:
        rows: list = list(Registration.objects.filter(id__in=ids).select_related("tournament").order_by("id"))
        entries = rows
    else:
        rows = list(
            Match.objects.filter(id__in=ids)
            .select_related("tournament", "participant1", "participant2", "winner", "loser")
            .order_by("id")
        )
        entries = [m.participant1 for m in rows] + [m.participant2 for m in rows]
    teams = {r.team_id for r in entries if r.team_id is not None}
    memberships = TeamMembership.objects.filter(team_id__in=teams).values_list(
        "team_id", "user_id", "joined_at", "left_at"
    )
    members = rules.members_active_at(entries, list(memberships))
    if label == REGISTRATION:
        return [rules.derive_registration(r, members) for r in rows]
    return [rules.derive_match(m, members) for m in rows]


@pytest.mark.django_db
def test_the_column_loaders_derive_exactly_what_model_instances_derive(history_mode):  # noqa: F811
    cup = TournamentFactory(game="valorant", season=2025)
    team = TeamFactory()
    early = timezone.now() - timedelta(days=10)
    TeamMembershipFactory(team=team, joined_at=early)
    TeamMembershipFactory(team=team, joined_at=early, left_at=timezone.now() - timedelta(days=5))
    TeamMembershipFactory(team=team, joined_at=timezone.now() - timedelta(days=1))  # joined after the entry
    team_entry = RegistrationFactory(tournament=cup, user=None, team=team, checked_in_at=timezone.now())
    solo = RegistrationFactory(tournament=cup)
    other = RegistrationFactory(tournament=cup, checked_in=False)
    RegistrationFactory(tournament=cup, status=Registration.Status.CANCELLED)
    RegistrationFactory(tournament=TournamentFactory(game="", season=None))
    at = timezone.now() - timedelta(hours=3)
    MatchFactory(tournament=cup, participant1=team_entry, participant2=solo, winner=team_entry, loser=solo,
                 state=Match.State.COMPLETED, completed_at=at)  # fmt: skip
    MatchFactory(tournament=cup, participant1=solo, participant2=other, state=Match.State.FORFEIT)
    MatchFactory(tournament=cup, participant1=other, participant2=team_entry, state=Match.State.DISPUTED)
    MatchFactory(tournament=cup, participant1=other, participant2=solo, winner=solo, loser=other,
                 state=Match.State.COMPLETED)  # fmt: skip

    for label, model in ((REGISTRATION, Registration), (MATCH, Match)):
        ids = list(model.objects.order_by("id").values_list("id", flat=True))
        loaded = source_kind(label).load(ids)
        assert loaded == _model_derivations(label, ids)
        assert sum(len(d.events) for d in loaded) > len(ids)  # the comparison covered real events


@pytest.mark.django_db
def test_free_text_columns_travel_intact_through_the_array_literals(history_mode):  # noqa: F811
    user = UserFactory()
    game = 'R6 "Siege", {pro} \\ league'
    event = NewEvent(user.pk, E.MATCH_PLAYED, timezone.now(), MATCH, 991, {"round": "F"}, game=game, season=3)
    with transaction.atomic():
        result = append([Derivation(MATCH, 991, (event,))])
    assert len(result.inserted) == 1
    row = UserActivity.objects.get()
    assert (row.game, row.season, row.metadata) == (game, 3, {"round": "F"})
    assert UserGameStats.objects.get(profile_id=user.pk, game=game).matches_played == 1


@pytest.mark.django_db
def test_an_invalid_event_is_rejected_even_when_it_shares_a_valid_events_metadata(history_mode):  # noqa: F811
    user = UserFactory()
    meta = {"tournament": "Cup"}
    good = NewEvent(user.pk, E.MATCH_PLAYED, timezone.now(), MATCH, 5, meta)
    bad = NewEvent(user.pk, E.MATCH_PLAYED, timezone.now().replace(tzinfo=None), MATCH, 5, meta, seq=2)
    with pytest.raises(InvalidEventError, match="aware datetime"), transaction.atomic():
        append([Derivation(MATCH, 5, (good, bad))])
    assert not UserActivity.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_chunk_takes_one_advisory_lock_per_granule_of_ids_not_one_per_row(history_mode):  # noqa: F811
    history = make_history(players=6, matches=3 * LOCK_GRANULE)
    ids = [m.pk for m in history.matches]
    with transaction.atomic():
        record_events_for(MATCH, ids, origin="backfill")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = %s",
                [source_kind(MATCH).lock_space],
            )
            (held,) = cursor.fetchone()
    granules = {i // LOCK_GRANULE for i in ids}
    assert held == len(granules) < len(ids)


@pytest.mark.django_db
def test_a_batch_of_more_matches_than_the_live_limit_only_marks_the_game_without_reading_the_ledger(
    history_mode,  # noqa: F811
):
    history = make_history(players=8, matches=2 * LIVE_BATCH_MAX)  # one in six a forfeit: no outcome
    ids = [m.pk for m in history.matches]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        record_events_for(MATCH, ids, origin="backfill")
    rating_reads = [q["sql"] for q in queries if "stats_ratinghistory" in q["sql"] and "INSERT" not in q["sql"]]
    # One query placed the matches; the per-match netting of outcomes over the ledger (what a live batch needs to
    # fold) was not run.
    assert len(rating_reads) == 1 and "activity_useractivity" not in rating_reads[0]
    marks = list(RatingReplayMark.objects.all())
    assert len(marks) == 1 and marks[0].match_id == 0
    earliest = min(history.matches, key=lambda m: (m.tournament.starts_at or m.completed_at, m.pk))
    assert marks[0].key_at <= (earliest.tournament.starts_at or earliest.completed_at)


@pytest.mark.django_db
def test_a_batch_of_many_matches_spread_over_games_marks_each_game_once_and_starts_no_replay(
    history_mode,  # noqa: F811
    monkeypatch,
):
    # A backfill chunk of the synthetic platform spans six games with a third of the live limit each: judged per
    # game, each looked like a live correction, was netted over the ledger and published a replay (at 5M events the
    # replays starved the backfill). Judged by the whole recording it is a bulk recording.
    from stats.ratings import live

    monkeypatch.setattr(live, "LIVE_BATCH_MAX", 20)
    published = []
    monkeypatch.setattr(live, "publish_on_commit", lambda name, **kw: published.append(name))
    first, second = make_history(players=6, matches=15), make_history(players=6, matches=15, seed=3)
    Tournament.objects.filter(pk=second.matches[0].tournament_id).update(game="cs2")
    with transaction.atomic():
        record_events_for(MATCH, [m.pk for m in (*first.matches, *second.matches)], origin="backfill")
    assert sorted(RatingReplayMark.objects.values_list("game", "match_id")) == [("cs2", 0), ("valorant", 0)]
    assert published == []


@pytest.mark.django_db
@pytest.mark.parametrize("origin", ["backfill", "reconcile"])
def test_a_small_recording_of_history_behind_the_rated_history_only_marks_and_starts_no_replay(
    history_mode,  # noqa: F811
    monkeypatch,
    origin,
):
    # A backfill lane's last chunk can hold a few matches only. Recorded as news, those older than the game's rated
    # history were live corrections, and each recording published a replay: at 5M events both backfill lanes ran
    # full replays instead of their chunks. History only marks, whatever its size; the minutely job replays.
    from stats.ratings import live

    published = []
    monkeypatch.setattr(live, "publish_on_commit", lambda name, **kw: published.append(name))
    history = make_history(players=6, matches=12)
    in_order = sorted(history.matches, key=lambda m: (m.tournament.starts_at or m.completed_at, m.pk))
    older, late, latest = in_order[:3], in_order[3:6], in_order[6:]
    with transaction.atomic():
        record_events_for(MATCH, [m.pk for m in latest], origin="live")  # news, in order: folded at once
    assert not RatingReplayMark.objects.exists() and published == []
    with transaction.atomic():
        record_events_for(MATCH, [m.pk for m in older], origin=origin)
    assert list(RatingReplayMark.objects.values_list("game", "match_id")) == [("valorant", 0)]
    assert published == []
    with transaction.atomic():  # the same kind of late matches as news: a correction, with a replay now
        record_events_for(MATCH, [m.pk for m in late], origin="live")
    assert published == ["tasks.reconciliation.replay_ratings"]


def _ledger_inserts(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("INSERT INTO activity_")]


@pytest.mark.django_db
def test_a_backfill_inserts_new_events_without_a_conflict_check_per_row(history_mode):  # noqa: F811
    history = make_history(players=4, matches=6)
    ids = [m.pk for m in history.matches]
    with CaptureQueriesContext(connection) as queries:
        result = record_events_for(MATCH, ids, origin="backfill")
    assert result.inserted
    (insert,) = _ledger_inserts(queries)
    assert "ON CONFLICT" not in insert  # nothing was recorded: the plain INSERT went through


@pytest.mark.django_db
def test_a_backfill_meeting_recorded_events_falls_back_and_records_exactly_the_missing_ones(history_mode):  # noqa: F811
    make_history(players=4, matches=2)
    ids = list(Registration.objects.order_by("id").values_list("id", flat=True))
    # Recorded before the backfill reaches them (registrations have no authority types: the planner does not
    # subtract what is recorded, so their events meet the ledger's unique key).
    record_events_for(REGISTRATION, ids[:2], origin="live")
    before = set(UserActivity.objects.values_list("source_id", "user_id", "event_type"))
    with CaptureQueriesContext(connection) as queries:
        result = record_events_for(REGISTRATION, ids, origin="backfill")
    plain, with_conflict_check = _ledger_inserts(queries)
    assert "ON CONFLICT" not in plain and "ON CONFLICT DO NOTHING" in with_conflict_check
    after = set(UserActivity.objects.values_list("source_id", "user_id", "event_type"))
    assert {(e.source_id, e.user_id, e.event_type) for e in result.inserted} == after - before
    assert result.inserted and all(e.source_id not in ids[:2] for e in result.inserted)
    assert UserActivity.objects.filter(source_model=REGISTRATION).count() == len(after)  # nothing twice
    assert not record_events_for(REGISTRATION, ids, origin="backfill").inserted  # a second backfill adds nothing
