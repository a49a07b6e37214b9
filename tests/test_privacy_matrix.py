"""The privacy rules of DESIGN.md §7 as a full matrix:
viewer (anonymous, other, follower, self, staff) x event visibility x profile flags x surface.

The expected outcome of every cell comes from `sees()` below, a direct transcription of the rules written
independently of activity/privacy.py; each surface is then read the way its users read it (selectors, the JSON API,
the pages) and must show exactly what `sees()` allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import AnonymousUser, User

from activity.event_types import EventType as E
from activity.privacy import NotPermitted, relation_between
from activity.selectors.economy import coin_events
from activity.selectors.match_history import match_history
from activity.selectors.timeline import MAJOR_EVENTS, timeline
from activity.selectors.tournament_history import tournament_history
from esports.profiles.models import UserProfile
from stats.selectors.export import user_export
from stats.selectors.lifetime import lifetime_stats
from tests.factories import FollowFactory, UserFactory
from tests.read_side import event, record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]

VIEWERS = ("anonymous", "other", "follower", "self", "staff")
VISIBILITIES = ("public", "followers", "private")


@dataclass(frozen=True)
class Flags:
    show_match_history: bool
    show_tournament_stats: bool

    def __str__(self) -> str:
        matches = "on" if self.show_match_history else "off"
        tournaments = "on" if self.show_tournament_stats else "off"
        return f"matches-{matches}/tournaments-{tournaments}"


FLAGS = [Flags(m, t) for m in (True, False) for t in (True, False)]

# One event of each privacy category; the subject has all of them, all with the visibility of the cell.
CATEGORY = {
    E.TOURNAMENT_WON: "placement",
    E.TOURNAMENT_JOINED: "participation",
    E.MATCH_WON: "match",
    E.COINS_EARNED: "economy",
    E.TEAM_JOINED: "neutral",
}
TITLES = {
    E.TOURNAMENT_WON: "Won Spring Cup",
    E.TOURNAMENT_JOINED: "Checked in at Spring Cup",
    E.MATCH_WON: "Won a QF match at Spring Cup",
    E.COINS_EARNED: "Earned 250 DeltaCoins",
    E.TEAM_JOINED: "Joined team Red Foxes",
}
PRIVATE_STATS = {"total_spent", "net_earnings", "last_activity_at", "stats_updated_at"}


def sees(viewer: str, visibility: str, category: str, flags: Flags) -> bool:
    """The rules, as written in DESIGN.md §7."""
    if viewer in ("self", "staff"):
        return True
    if visibility == "private" or (visibility == "followers" and viewer != "follower"):
        return False
    if category == "economy":
        return False
    if category == "match" and not flags.show_match_history:
        return False
    return category != "participation" or flags.show_tournament_stats


def match_history_allowed(viewer: str, flags: Flags) -> bool:
    return viewer in ("self", "staff") or flags.show_match_history


@dataclass
class Cell:
    viewer_kind: str
    visibility: str
    flags: Flags
    subject: object
    viewer: object
    match_id: int

    def expected(self, types) -> set[str]:
        return {t for t in types if sees(self.viewer_kind, self.visibility, CATEGORY.get(t, "match"), self.flags)}

    def relation(self):
        return relation_between(self.viewer, UserProfile.objects.select_related("user").get(pk=self.subject.pk))


@pytest.fixture
def cell(request) -> Cell:
    viewer_kind, visibility, flags = request.param
    subject = UserFactory()
    UserProfile.objects.filter(pk=subject.pk).update(
        show_match_history=flags.show_match_history, show_tournament_stats=flags.show_tournament_stats
    )
    viewers: dict[str, Callable[[], User | AnonymousUser]] = {
        "anonymous": lambda: AnonymousUser(),
        "other": UserFactory,
        "self": lambda: subject,
        "staff": lambda: UserFactory(is_staff=True),
    }
    viewer = viewers.get(viewer_kind, UserFactory)()
    if viewer_kind == "follower":
        FollowFactory(follower=viewer, followee=subject)
    else:
        FollowFactory(follower=subject, followee=UserFactory())  # following someone never widens what others see
    meta = {"tournament_id": 7, "tournament": "Spring Cup", "game": "valorant", "round": "QF"}
    match = event(subject, E.MATCH_PLAYED, meta=meta, visibility=visibility)
    record(
        event(subject, E.TOURNAMENT_WON, meta=meta, visibility=visibility),
        event(subject, E.TOURNAMENT_JOINED, meta=meta, visibility=visibility),
        match,
        event(subject, E.MATCH_WON, meta=meta, visibility=visibility, source_id=match.source_id),
        event(subject, E.COINS_EARNED, meta={"reason": "prize"}, amount=250, visibility=visibility),
        event(subject, E.TEAM_JOINED, meta={"team_id": 3, "team": "Red Foxes"}, visibility=visibility),
    )
    return Cell(viewer_kind, visibility, flags, subject, viewer, match.source_id)


MATRIX = [(v, vis, f) for v in VIEWERS for vis in VISIBILITIES for f in FLAGS]
IDS = [f"{v}-{vis}-{f}" for v, vis, f in MATRIX]
parametrize_cells = pytest.mark.parametrize("cell", MATRIX, ids=IDS, indirect=True)


@parametrize_cells
def test_timeline_shows_exactly_what_the_viewer_may_see(cell):
    shown = {e.event_type for e in timeline(cell.relation()).items}
    assert shown == cell.expected(TITLES.keys() & MAJOR_EVENTS)  # no match or coin event by default
    asked = {e.event_type for e in timeline(cell.relation(), types=frozenset(TITLES)).items}
    assert asked == cell.expected(TITLES)  # `types` brings them back, within privacy


@parametrize_cells
def test_match_history_is_hidden_or_filtered_for_the_viewer(cell):
    if not match_history_allowed(cell.viewer_kind, cell.flags):
        with pytest.raises(NotPermitted):
            match_history(cell.relation())
        return
    shown = [(e.source_id, e.outcome) for e in match_history(cell.relation()).items]
    visible = sees(cell.viewer_kind, cell.visibility, "match", cell.flags)
    assert shown == ([(cell.match_id, "won")] if visible else [])


@parametrize_cells
def test_tournament_history_keeps_placements_public_and_participation_per_flag(cell):
    shown = {e.event_type for e in tournament_history(cell.relation()).items}
    assert shown == cell.expected({E.TOURNAMENT_WON, E.TOURNAMENT_JOINED})


@parametrize_cells
def test_economy_is_for_self_and_staff_only(cell):
    if cell.viewer_kind not in ("self", "staff"):
        with pytest.raises(NotPermitted):
            coin_events(cell.relation())
        return
    assert [(e.event_type, e.amount) for e in coin_events(cell.relation()).items] == [(E.COINS_EARNED, 250)]


@parametrize_cells
def test_export_is_for_self_and_staff_only_and_complete(cell):
    relation = cell.relation()
    if cell.viewer_kind not in ("self", "staff"):
        with pytest.raises(NotPermitted):
            user_export(relation, UserProfile.objects.select_related("user").get(pk=cell.subject.pk))
        return
    document = user_export(relation, UserProfile.objects.select_related("user").get(pk=cell.subject.pk))
    assert sorted(e["event_type"] for e in document["events"]) == sorted(
        [E.TOURNAMENT_WON, E.TOURNAMENT_JOINED, E.MATCH_PLAYED, E.MATCH_WON, E.COINS_EARNED, E.TEAM_JOINED]
    )


@parametrize_cells
def test_lifetime_stats_are_public_except_spending_and_timing(cell):
    stats = lifetime_stats(cell.relation())
    assert stats["tournaments_won"] == 1 and stats["matches_won"] == 1  # aggregate counters: always public
    assert stats["total_earned"] == 250
    assert (stats.keys() >= PRIVATE_STATS) == (cell.viewer_kind in ("self", "staff"))
    assert not (PRIVATE_STATS & stats.keys()) or cell.viewer_kind in ("self", "staff")


def _client_for(client, cell):
    if cell.viewer_kind != "anonymous":
        client.force_login(cell.viewer)
    return client


def _denied_status(cell) -> int:
    return 401 if cell.viewer_kind == "anonymous" else 403


@parametrize_cells
def test_api_applies_the_same_rules_on_every_endpoint(client, cell):
    api = _client_for(client, cell)
    base = f"/api/users/{cell.subject.pk}"

    activity = api.get(f"{base}/activity/")
    assert activity.status_code == 200
    assert {e["event_type"] for e in activity.json()["results"]} == cell.expected(TITLES.keys() & MAJOR_EVENTS)
    asked = api.get(f"{base}/activity/", {"types": ",".join(TITLES)})
    assert {e["event_type"] for e in asked.json()["results"]} == cell.expected(TITLES)

    matches = api.get(f"{base}/matches/")
    if match_history_allowed(cell.viewer_kind, cell.flags):
        visible = sees(cell.viewer_kind, cell.visibility, "match", cell.flags)
        assert matches.status_code == 200
        assert [(m["id"] > 0, m["outcome"]) for m in matches.json()["results"]] == ([(True, "won")] if visible else [])
    else:
        assert matches.status_code == _denied_status(cell), matches.content
        assert matches.json()["error"] in ("permission_denied", "not_authenticated")

    tournaments = api.get(f"{base}/tournaments/").json()
    assert {e["event_type"] for e in tournaments["results"]} == cell.expected({E.TOURNAMENT_WON, E.TOURNAMENT_JOINED})
    assert tournaments["participation_hidden"] == (
        not cell.flags.show_tournament_stats and cell.viewer_kind not in ("self", "staff")
    )

    stats = api.get(f"{base}/stats/").json()
    assert (stats.keys() >= PRIVATE_STATS) == (cell.viewer_kind in ("self", "staff"))
    assert stats["tournaments_won"] == 1

    for surface in ("economy", "export"):
        response = api.get(f"{base}/{surface}/")
        if cell.viewer_kind in ("self", "staff"):
            assert response.status_code == 200, (surface, response.content)
        else:
            assert response.status_code == _denied_status(cell), (surface, response.content)
            assert b"DeltaCoins" not in response.content and b"prize" not in response.content


@parametrize_cells
def test_pages_render_only_what_the_viewer_may_see(client, cell):
    site = _client_for(client, cell)
    username = cell.subject.username
    html = site.get(f"/u/{username}/activity/", {"types": ",".join(TITLES)}).content.decode()
    for event_type, title in TITLES.items():
        assert (title in html) == (event_type in cell.expected(TITLES)), (event_type, title)

    matches = site.get(f"/u/{username}/matches/")
    assert matches.status_code == 200
    hidden_notice = "keeps their match history private" in matches.content.decode()
    assert hidden_notice == (not match_history_allowed(cell.viewer_kind, cell.flags))

    for page in ("economy/", "export.json"):
        response = site.get(f"/u/{username}/{page}")
        assert response.status_code == (200 if cell.viewer_kind in ("self", "staff") else 403), page
