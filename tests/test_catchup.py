"""Catch-up sweep: what lost tasks missed is recorded within minutes, once, with exact stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections
from django.utils import timezone

from activity import catchup
from activity.models import SweepWatermark, UserActivity
from activity.sources import SOURCES
from esports.tournaments.models import Match
from monitoring import metrics
from tests.backfill_support import (
    MATCH,
    PROFILE,
    REGISTRATION,
    RESULT,
    TRANSACTION,
    UNLOCK,
    Expected,
    assert_projection_matches_ledger,
    ledger_keys,
    projected_counters,
)
from tests.conftest import wait_until
from tests.factories import MatchFactory, RegistrationFactory, TournamentFactory
from tests.private_services import PrivateRedis, subprocess_database_url

REPO = Path(django_settings.BASE_DIR)


def findings() -> float:
    return sum(s.value for m in metrics.SWEEP_FINDINGS.collect() for s in m.samples if s.name.endswith("_total"))


# --- the broker is down while rows change ----------------------------------------------------------------------

# Run by `manage.py shell -c` in a subprocess whose REDIS_URL is a private broker: the platform's own writes through
# the ORM, so the receivers really try to enqueue (and the tasks are lost). Prints what it wrote.
PLATFORM_WRITES = r"""
import json, os
from django.utils import timezone
from esports.tournaments.models import Match, Registration, TournamentResult
from esports.economy.models import DeltaCrownTransaction
from esports.teams.models import Team, TeamMembership
from esports.achievements.models import Achievement, UserAchievement
from django.contrib.auth import get_user_model
from monitoring import metrics

plan = json.loads(os.environ["PLAN"])
out = {}
if plan["step"] == "broker up":
    m = Match.objects.get(pk=plan["match"])
    m.winner_id, m.loser_id, m.state, m.completed_at = m.participant1_id, m.participant2_id, "completed", timezone.now()
    m.save()
else:
    for pk, state in plan["matches"]:
        m = Match.objects.get(pk=pk)
        m.winner_id, m.loser_id, m.state, m.completed_at = m.participant2_id, m.participant1_id, state, timezone.now()
        m.save()
    late = Registration.objects.get(pk=plan["pending"])
    late.status, late.checked_in, late.checked_in_at = "confirmed", True, timezone.now()
    late.save()
    regs = plan["podium"]
    result = TournamentResult.objects.create(tournament_id=plan["tournament"], winner_id=regs[0], runner_up_id=regs[1],
                                             third_place_id=regs[2], fourth_place_id=regs[3])
    newcomer = get_user_model().objects.create(username="newcomer")
    wallet = newcomer.profile.wallet
    txns = [DeltaCrownTransaction.objects.create(wallet=wallet, amount=a, reason="prize") for a in (500, -120)]
    team = Team.objects.create(name="Late Lions", created_by=newcomer)
    member = TeamMembership.objects.create(team=team, user=newcomer, joined_at=timezone.now())
    member.left_at = timezone.now()
    member.save()
    badge = Achievement.objects.create(code="late", name="Late")
    unlock = UserAchievement.objects.create(user=newcomer, achievement=badge, unlocked_at=timezone.now())
    out = {"result": result.pk, "newcomer": newcomer.pk, "txns": [[t.pk, t.amount] for t in txns], "team": team.pk,
           "membership": member.pk, "unlock": unlock.pk}
out["enqueue_failures"] = sum(s.value for m in metrics.ENQUEUE_FAILURES.collect() for s in m.samples
                              if s.name.endswith("_total"))
print("RESULT " + json.dumps(out))
"""


def platform_writes(broker_url: str, plan: dict) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": broker_url,
        "CELERY_BROKER_URL": broker_url,
        "PLAN": json.dumps(plan),
        "LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PLATFORM_WRITES],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.mark.integration
@pytest.mark.slow
def test_after_the_broker_was_down_while_rows_changed_the_sweep_records_everything_once(live_worker, no_grace):
    # Before the outage: a tournament recorded live through the real broker and worker.
    tournament = TournamentFactory()
    regs = [RegistrationFactory(tournament=tournament) for _ in range(6)]
    pending = RegistrationFactory(tournament=tournament, status="pending", checked_in=False)
    matches = [MatchFactory(tournament=tournament, participant1=regs[i], participant2=regs[i + 1]) for i in range(4)]
    users = {r.pk: r.user_id for r in regs + [pending]}
    live = Expected()
    for r in regs + [pending]:
        live.event(PROFILE, r.user_id, r.user_id, "profile_created")
    for r in regs:
        live.event(REGISTRATION, r.pk, r.user_id, "tournament_registered", tournaments_registered=1)
        live.event(REGISTRATION, r.pk, r.user_id, "tournament_joined", tournaments_played=1)
    wait_until(lambda: ledger_keys() == Counter(live.keys), timeout=30, message="live recording before the outage")

    # The outage: one change is published to a broker that then dies with it; the rest cannot be published at all.
    broker = PrivateRedis().start()
    try:
        platform_writes(broker.url, {"step": "broker up", "match": matches[0].pk})
    finally:
        broker.stop()
    wrote = platform_writes(
        broker.url,
        {
            "step": "broker down",
            "matches": [[matches[1].pk, "completed"], [matches[2].pk, "forfeit"]],
            "pending": pending.pk,
            "tournament": tournament.pk,
            "podium": [regs[0].pk, regs[1].pk, regs[2].pk, regs[3].pk],
        },
    )
    assert wrote["enqueue_failures"] >= 10  # every save of the second step failed to publish, fast
    time.sleep(1)  # nothing is coming: the tasks are gone
    assert ledger_keys() == Counter(live.keys)

    expected = Expected(set(live.keys))
    expected.counters.update({u: Counter(c) for u, c in live.counters.items()})
    m0, m1, m2 = matches[0], matches[1], matches[2]
    for m, winner, loser, state in (
        (m0, m0.participant1_id, m0.participant2_id, "completed"),
        (m1, m1.participant2_id, m1.participant1_id, "completed"),
        (m2, m2.participant2_id, m2.participant1_id, "forfeit"),
    ):
        expected.event(MATCH, m.pk, users[winner], "match_played", matches_played=1)
        expected.event(MATCH, m.pk, users[loser], "match_played", matches_played=1)
        if state == "completed":
            expected.event(MATCH, m.pk, users[winner], "match_won", matches_won=1)
            expected.event(MATCH, m.pk, users[loser], "match_lost", matches_lost=1)
    expected.event(REGISTRATION, pending.pk, pending.user_id, "tournament_registered", tournaments_registered=1)
    expected.event(REGISTRATION, pending.pk, pending.user_id, "tournament_joined", tournaments_played=1)
    result = wrote["result"]
    for event_type, reg, counter in (
        ("tournament_won", regs[0], "tournaments_won"),
        ("tournament_runner_up", regs[1], "tournaments_runner_up"),
        ("tournament_top4", regs[2], "tournaments_top4"),
        ("tournament_top4", regs[3], "tournaments_top4"),
    ):
        expected.event(RESULT, result, reg.user_id, event_type, **{counter: 1})
    for reg in regs + [pending]:  # every checked-in entry completed the tournament
        expected.event(RESULT, result, reg.user_id, "tournament_completed", tournaments_completed=1)
    for place, reg in enumerate(regs[:4], start=1):  # placed as the podium names them (the others lost no match)
        expected.event(RESULT, result, reg.user_id, "tournament_placed", placements_counted=1, placements_sum=place)
    newcomer = wrote["newcomer"]
    expected.event(PROFILE, newcomer, newcomer, "profile_created")
    (earn, earned), (spend, spent) = wrote["txns"]
    expected.event(TRANSACTION, earn, newcomer, "coins_earned", total_earned=earned)
    expected.event(TRANSACTION, spend, newcomer, "coins_spent", total_spent=-spent)
    expected.event("teams.team", wrote["team"], newcomer, "team_created", teams_created=1)
    expected.event(
        "teams.teammembership", wrote["membership"], newcomer, "team_joined", teams_joined=1, current_teams_count=1
    )
    expected.event("teams.teammembership", wrote["membership"], newcomer, "team_left", current_teams_count=-1)
    expected.event(UNLOCK, wrote["unlock"], newcomer, "achievement_unlocked", achievements_count=1)

    # The shared broker is up: the beat's sweep task runs on the real worker.
    found_before = findings()
    from tasks.sweeps import catch_up

    catch_up.apply_async()
    wait_until(
        lambda: ledger_keys() == Counter(expected.keys), timeout=30, message="the sweep to record the lost events"
    )
    wait_until(
        lambda: findings() - found_before == len(expected.keys) - len(live.keys),
        timeout=10,
        message="the sweep's findings metric",
    )

    assert projected_counters() == expected.user_counters()
    assert_projection_matches_ledger(expected.counters)
    marks = dict(SweepWatermark.objects.values_list("source", "watermark"))
    assert set(marks) == set(SOURCES) and all(m <= timezone.now() for m in marks.values())

    # A later sweep (the next minute) finds nothing more: nothing doubled.
    assert catchup.sweep().found == 0
    assert ledger_keys() == Counter(expected.keys)


# --- the window ----------------------------------------------------------------------------------------------------


def completed_match(**kwargs) -> Match:
    m = MatchFactory(**kwargs)
    m.winner, m.loser, m.state, m.completed_at = m.participant1, m.participant2, Match.State.COMPLETED, timezone.now()
    m.save()
    return m


def set_changed_at(match: Match, when) -> None:
    # QuerySet.update sends no signal and leaves auto_now alone: it stands for a row whose change time was stamped
    # `when` and whose task never ran.
    Match.objects.filter(pk=match.pk).update(updated_at=when)


def recorded(match: Match) -> bool:
    return UserActivity.objects.filter(source_model=MATCH, source_id=match.pk).exists()


@pytest.mark.django_db
def test_a_row_committed_late_inside_the_overlap_margin_is_still_swept(history_mode, settings):
    settings.ACTIVITY_SWEEP_OVERLAP_SECONDS, settings.ACTIVITY_SWEEP_GRACE_SECONDS = 120, 15
    now = timezone.now()
    SweepWatermark.objects.create(source=MATCH, watermark=now - timedelta(minutes=1))
    late = completed_match()  # stamped before the watermark, committed after the last sweep (a long transaction)
    set_changed_at(late, now - timedelta(minutes=2))
    too_old = completed_match()  # outside the margin: the nightly reconciliation's job
    set_changed_at(too_old, now - timedelta(minutes=4))
    in_flight = completed_match()  # younger than the grace period: its live task is still expected to run
    set_changed_at(in_flight, now - timedelta(seconds=5))

    report = catchup.sweep(now)

    assert recorded(late) and not recorded(too_old) and not recorded(in_flight)
    assert report.sources[MATCH].scanned == 1 and report.sources[MATCH].found == 4
    assert SweepWatermark.objects.get(source=MATCH).watermark == now - timedelta(seconds=15)
    # The next sweep picks up the row that was in flight (its task was lost after all).
    assert catchup.sweep(now + timedelta(minutes=1)).sources[MATCH].found == 4 and recorded(in_flight)


@pytest.mark.django_db
def test_without_a_watermark_the_sweep_starts_an_initial_lookback_ago(history_mode, settings, no_grace):
    settings.ACTIVITY_SWEEP_INITIAL_LOOKBACK_SECONDS, settings.ACTIVITY_SWEEP_OVERLAP_SECONDS = 600, 60
    now = timezone.now()
    inside, outside = completed_match(), completed_match()
    set_changed_at(inside, now - timedelta(minutes=10, seconds=30))
    set_changed_at(outside, now - timedelta(minutes=12))

    catchup.sweep(now)

    assert recorded(inside) and not recorded(outside)


@pytest.mark.django_db
def test_a_large_backlog_is_swept_in_bounded_chunks(history_mode, settings, no_grace, django_assert_max_num_queries):
    settings.ACTIVITY_SWEEP_BATCH_SIZE = 7
    stamp = timezone.now() - timedelta(seconds=30)
    matches = [completed_match() for _ in range(30)]
    Match.objects.filter(pk__in=[m.pk for m in matches[:12]]).update(updated_at=stamp)  # ties on the change time

    chunks = list(catchup.changed_id_chunks(SOURCES[MATCH], stamp - timedelta(seconds=1), timezone.now(), 7))

    assert [len(c) for c in chunks] == [7, 7, 7, 7, 2]
    assert sorted(i for c in chunks for i in c) == sorted(m.pk for m in matches)
    assert catchup.sweep().sources[MATCH].found == 30 * 4


# --- failure and concurrency -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_source_that_fails_keeps_its_watermark_and_the_others_advance(history_mode, no_grace, monkeypatch):
    completed_match()
    before = timezone.now() - timedelta(minutes=5)
    SweepWatermark.objects.bulk_create([SweepWatermark(source=label, watermark=before) for label in SOURCES])
    real = catchup.isolate_and_record

    def matches_break(label, ids, **kwargs):
        if label == MATCH:
            raise RuntimeError("database hiccup (simulated)")
        return real(label, ids, **kwargs)

    monkeypatch.setattr(catchup, "isolate_and_record", matches_break)
    with pytest.raises(catchup.SweepFailedError, match="tournaments.match"):
        catchup.sweep()

    marks = dict(SweepWatermark.objects.values_list("source", "watermark"))
    assert marks[MATCH] == before
    assert all(mark > before for label, mark in marks.items() if label != MATCH)
    assert UserActivity.objects.filter(source_model=REGISTRATION).exists()  # the other sources were swept
    monkeypatch.setattr(catchup, "isolate_and_record", real)
    assert catchup.sweep().sources[MATCH].found == 4  # and the next sweep retries the failed one


@pytest.mark.django_db(transaction=True)
def test_a_sweep_started_while_another_runs_steps_aside(history_mode, no_grace):
    completed_match()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", list(catchup.SWEEP_LOCK))
        report = catchup.sweep()
    finally:
        other.close()
    assert report.skipped and not UserActivity.objects.exists() and not SweepWatermark.objects.exists()
    assert catchup.sweep().found > 0  # the lock went with the other session


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_record_every_event_once(history_mode, no_grace):
    matches = [completed_match() for _ in range(12)]
    reports, errors = [], []
    barrier = threading.Barrier(2)

    def sweeper() -> None:
        try:
            barrier.wait(10)
            reports.append(catchup.sweep())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(r.found for r in reports) == UserActivity.objects.count()
    assert Counter(k[3] for k in ledger_keys([MATCH])) == {"match_played": 24, "match_won": 12, "match_lost": 12}
    assert max(ledger_keys().values()) == 1
    users = {r.user_id for m in matches for r in (m.participant1, m.participant2)}
    assert_projection_matches_ledger(users)
