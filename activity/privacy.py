"""Who may see what of a player's activity (DESIGN.md §7). The one place the privacy rules live.

Every read surface (timeline, match history, tournament history, economy, lifetime stats, export; pages and API alike)
first works out the viewer's relation to the subject (`relation_between`) and then reads through `visible_events`,
a queryset filter built from that relation, so no surface can forget a rule.

The rules:

* Viewer classes: anonymous, other user, follower (a `Follow` row follower -> subject), self, staff.
  Self and staff see everything.
* Everyone else sees events whose `visibility` is `public`; followers also see `followers` events. An event's
  visibility is the last word: a `private` event is never shown to anyone but self and staff.
* Economy (coin events, their amounts and reasons; what a player spent): self and staff only, whatever the event's
  visibility. The economy summary and the export refuse anyone else (`NotPermitted`).
* `show_match_history` off: match events (played / won / lost and their corrections) are hidden from others on every
  surface, and the match history itself is refused.
* `show_tournament_stats` off: the tournament participation list (registered / joined / completed / placed) is
  hidden from others; official placements (won / runner-up / top 4, and corrections of them) are never hidden by a
  profile flag.
* Aggregate counters are public (they feed the public leaderboards, total_earned included) except the figures that
  describe spending or private timing: total_spent, net_earnings, last_activity_at and stats_updated_at
  (`redact_stats`).

The money rule, decided (DESIGN.md §7 says both "economy amounts: self and staff only" and "aggregate counters are
always public"): `total_earned` is a public competitive counter - what a player has won in prizes and rewards, shown
on the profile card, the stats API and the DeltaCoins-earned leaderboard, like titles or wins. Everything else about
money is self and staff only: `total_spent` (and `net_earnings`, which would reveal it), the amount and reason of any
single transaction, and the economy summary. Spending says how someone lives; earnings are a result of competing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from django.db.models import Q

from activity.event_types import COIN_EVENTS, REVERSAL_OF, EventType, Visibility
from esports.profiles.models import Follow, UserProfile

E = EventType


class ViewerClass(enum.StrEnum):
    ANONYMOUS = "anonymous"
    OTHER = "other"
    FOLLOWER = "follower"
    SELF = "self"
    STAFF = "staff"


def _with_reversals(types: set[str]) -> frozenset[str]:
    return frozenset(types | {REVERSAL_OF[t] for t in types if t in REVERSAL_OF})


ECONOMY_EVENTS: frozenset[str] = frozenset(COIN_EVENTS)
MATCH_EVENTS: frozenset[str] = _with_reversals({E.MATCH_PLAYED, E.MATCH_WON, E.MATCH_LOST})
# Every finish placed (tournament_placed: 5th for a quarter-final, 65th for an R128 loss) says where a player took
# part: participation, hidden with show_tournament_stats off. The podium keeps its official placements below, and
# the average placement is an aggregate counter (public, like the others).
PARTICIPATION_EVENTS: frozenset[str] = frozenset(
    {
        E.TOURNAMENT_REGISTERED,
        E.TOURNAMENT_JOINED,
        E.TOURNAMENT_COMPLETED,
        E.TOURNAMENT_PLACED,
        E.TOURNAMENT_PLACED_REVERSED,
    }
)
PLACEMENT_EVENTS: frozenset[str] = _with_reversals({E.TOURNAMENT_WON, E.TOURNAMENT_RUNNER_UP, E.TOURNAMENT_TOP4})

# Stats fields only self and staff see (the rest of the projection is public).
PRIVATE_STAT_FIELDS: tuple[str, ...] = (
    "total_spent",
    "net_earnings",
    "last_activity_at",
    "stats_updated_at",
    "disputes_filed",  # counts private dispute_filed events
)

_EVERYONE = frozenset({Visibility.PUBLIC})
_FOLLOWERS = frozenset({Visibility.PUBLIC, Visibility.FOLLOWERS})
_ALL = frozenset(Visibility.values)


class NotPermitted(PermissionError):
    """The viewer may not see this surface of this player at all (HTTP 403, or 401 for an anonymous viewer)."""


@dataclass(frozen=True, slots=True)
class ViewerRelation:
    """What a viewer is to a subject, plus the subject's privacy flags: everything a privacy decision needs."""

    viewer_class: ViewerClass
    subject_id: int
    show_match_history: bool = True
    show_tournament_stats: bool = True

    @property
    def sees_everything(self) -> bool:
        return self.viewer_class in (ViewerClass.SELF, ViewerClass.STAFF)

    @property
    def visibilities(self) -> frozenset[str]:
        if self.sees_everything:
            return _ALL
        return _FOLLOWERS if self.viewer_class is ViewerClass.FOLLOWER else _EVERYONE

    @property
    def can_see_economy(self) -> bool:
        return self.sees_everything

    @property
    def can_see_match_history(self) -> bool:
        return self.sees_everything or self.show_match_history

    @property
    def can_see_tournament_participation(self) -> bool:
        return self.sees_everything or self.show_tournament_stats

    @property
    def can_export(self) -> bool:
        return self.sees_everything

    def hidden_event_types(self) -> frozenset[str]:
        """Event types withheld from this viewer whatever their visibility."""
        if self.sees_everything:
            return frozenset()
        hidden = set(ECONOMY_EVENTS)
        if not self.show_match_history:
            hidden |= MATCH_EVENTS
        if not self.show_tournament_stats:
            hidden |= PARTICIPATION_EVENTS
        return frozenset(hidden)


def viewer_class(viewer, subject_id: int) -> ViewerClass:
    """Classify a viewer (a User, AnonymousUser or None) without the follower check (see relation_between)."""
    if viewer is None or not getattr(viewer, "is_authenticated", False) or not viewer.is_active:
        return ViewerClass.ANONYMOUS
    if viewer.is_staff or viewer.is_superuser:
        return ViewerClass.STAFF
    if viewer.pk == subject_id:
        return ViewerClass.SELF
    return ViewerClass.OTHER


def relation_between(viewer, subject: UserProfile) -> ViewerRelation:
    """The viewer's relation to the subject (one indexed EXISTS query, and only for a signed-in other user)."""
    kind = viewer_class(viewer, subject.pk)
    if kind is ViewerClass.OTHER and Follow.objects.filter(follower_id=viewer.pk, followee_id=subject.pk).exists():
        kind = ViewerClass.FOLLOWER
    return ViewerRelation(kind, subject.pk, subject.show_match_history, subject.show_tournament_stats)


def visible_events(relation: ViewerRelation) -> Q:
    """The filter selecting exactly the subject's ledger rows this viewer may see."""
    q = Q(user_id=relation.subject_id)
    if relation.sees_everything:
        return q
    hidden = relation.hidden_event_types()
    if hidden:
        q &= ~Q(event_type__in=sorted(hidden))
    return q & Q(visibility__in=sorted(relation.visibilities))


def require(allowed: bool, message: str) -> None:
    if not allowed:
        raise NotPermitted(message)


def redact_stats(relation: ViewerRelation, stats: dict) -> dict:
    """The subject's stats as this viewer may see them (a new dict; the cached one is never mutated)."""
    if relation.sees_everything:
        return dict(stats)
    return {k: v for k, v in stats.items() if k not in PRIVATE_STAT_FIELDS}
