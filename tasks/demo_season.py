"""A small season played through the real path: source rows saved with the ORM -> signals -> tasks -> ledger ->
stats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from esports.economy import services as economy
from esports.economy.payouts import pay_prizes
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult

PRIZE = 5000
# One demo season per database: its name is how a second `make demo` knows not to replay it.
DEMO_CUP = "DeltaCrown Demo Cup"


@dataclass
class SeasonReport:
    tournament: Tournament
    champion_id: int
    no_show_id: int
    disputed_match_id: int


def demo_season_champion() -> int | None:
    """The user who won the demo season already played on this database, or None if it was never played."""
    return (
        TournamentResult.objects.filter(tournament__name=DEMO_CUP)
        .order_by("tournament_id")
        .values_list("winner__user_id", flat=True)
        .first()
    )


def play_demo_season(player_ids: Sequence[int]) -> SeasonReport:
    """Eight players enter, seven check in (one no-show is replaced by a walkover), three rounds are played, one
    final is disputed and resolved the other way, the champion gets a prize. Every step is an ordinary ORM save, so
    each commit triggers the recording exactly as a request would."""
    if len(player_ids) < 8:
        raise ValueError("the demo season needs 8 players")
    users = list(get_user_model().objects.filter(id__in=player_ids[:8]).order_by("id"))
    now = timezone.now()
    tournament = Tournament.objects.create(
        name=DEMO_CUP, game="tennis", status=Tournament.Status.ONGOING, season=now.year, starts_at=now
    )
    regs = [
        Registration.objects.create(tournament=tournament, user=u, status=Registration.Status.CONFIRMED) for u in users
    ]
    for reg in regs[:7]:
        reg.checked_in, reg.checked_in_at = True, timezone.now()
        reg.save()
    no_show = regs[7]
    no_show.status = Registration.Status.NO_SHOW
    no_show.save()

    def play(
        round_name: str, a: Registration, b: Registration, winner: Registration, state: str = "completed"
    ) -> Match:
        match = Match.objects.create(tournament=tournament, round=round_name, participant1=a, participant2=b)
        match.state, match.winner = state, winner
        match.loser = b if winner == a else a
        match.completed_at = timezone.now()
        match.save()
        return match

    play("QF", regs[0], regs[1], regs[0])
    play("QF", regs[2], regs[3], regs[3])
    play("QF", regs[4], regs[5], regs[4])
    play("QF", regs[6], regs[7], regs[6], state="forfeit")  # the no-show loses by walkover
    semis = [play("SF", regs[0], regs[3], regs[0]), play("SF", regs[4], regs[6], regs[6])]
    final = play("F", regs[0], regs[6], regs[6])
    # The final is disputed and resolved the other way: the original events stay, compensations fix the stats.
    final.state = Match.State.DISPUTED
    final.save()
    with transaction.atomic():
        final.state, final.winner, final.loser = Match.State.COMPLETED, regs[0], regs[6]
        final.save()
    result = TournamentResult.objects.create(
        tournament=tournament,
        winner=regs[0],
        runner_up=regs[6],
        third_place=semis[0].loser,
        fourth_place=semis[1].loser,
    )
    tournament.status = Tournament.Status.COMPLETED
    tournament.save()
    # Money moves through the economy service; the result keys the prize, so a retried payout cannot pay twice.
    pay_prizes(result, {"winner": PRIZE})
    economy.debit(users[0], 250, "shop: profile banner")
    return SeasonReport(tournament, users[0].id, users[7].id, final.id)  # regs[7] is users[7]'s entry
