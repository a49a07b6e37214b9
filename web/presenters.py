"""How a ledger event reads to a person: a title, a detail line and a kind (its icon and colour on the pages).

Pure functions of an event's type, amount and metadata: the pages and the API describe events identically, and no
lookup is made (everything shown was copied into the event's metadata at derivation time).
"""

from __future__ import annotations

from dataclasses import dataclass

from activity.event_types import REVERSED_BASE
from activity.event_types import EventType as E

_TITLES: dict[str, str] = {
    E.TOURNAMENT_REGISTERED: "Registered for {tournament}",
    E.TOURNAMENT_JOINED: "Checked in at {tournament}",
    E.TOURNAMENT_COMPLETED: "Completed {tournament}",
    E.TOURNAMENT_WON: "Won {tournament}",
    E.TOURNAMENT_RUNNER_UP: "Runner-up at {tournament}",
    E.TOURNAMENT_TOP4: "Top 4 at {tournament}",
    E.MATCH_PLAYED: "Played a {round} match at {tournament}",
    E.MATCH_WON: "Won a {round} match at {tournament}",
    E.MATCH_LOST: "Lost a {round} match at {tournament}",
    E.COINS_EARNED: "Earned {amount} DeltaCoins",
    E.COINS_SPENT: "Spent {amount} DeltaCoins",
    E.ACHIEVEMENT_UNLOCKED: "Unlocked {name}",
    E.TEAM_CREATED: "Created team {team}",
    E.TEAM_JOINED: "Joined team {team}",
    E.TEAM_LEFT: "Left team {team}",
    E.PROFILE_CREATED: "Joined DeltaCrown",
    E.LEVEL_UP: "Reached level {level}",
    E.KYC_VERIFIED: "Identity verified",
    E.DISPUTE_FILED: "Disputed a {round} match at {tournament}",
    E.TOURNAMENT_PLACED: "Placed {placement} at {tournament}",
}
_CORRECTIONS: dict[str, str] = {
    E.TOURNAMENT_WON: "Correction: title at {tournament} withdrawn",
    E.TOURNAMENT_RUNNER_UP: "Correction: runner-up finish at {tournament} withdrawn",
    E.TOURNAMENT_TOP4: "Correction: top 4 finish at {tournament} withdrawn",
    E.TOURNAMENT_PLACED: "Correction: placement {placement} at {tournament} withdrawn",
    E.MATCH_PLAYED: "Correction: {round} match at {tournament} voided",
    E.MATCH_WON: "Correction: {round} win at {tournament} withdrawn",
    E.MATCH_LOST: "Correction: {round} loss at {tournament} withdrawn",
}
_KINDS: dict[str, str] = {
    E.TOURNAMENT_WON: "trophy",
    E.TOURNAMENT_RUNNER_UP: "medal",
    E.TOURNAMENT_TOP4: "medal",
    E.TOURNAMENT_REGISTERED: "tournament",
    E.TOURNAMENT_JOINED: "tournament",
    E.TOURNAMENT_COMPLETED: "tournament",
    E.MATCH_PLAYED: "match",
    E.MATCH_WON: "win",
    E.MATCH_LOST: "match",
    E.COINS_EARNED: "coins",
    E.COINS_SPENT: "coins",
    E.ACHIEVEMENT_UNLOCKED: "achievement",
    E.TEAM_CREATED: "team",
    E.TEAM_JOINED: "team",
    E.TEAM_LEFT: "team",
    E.PROFILE_CREATED: "profile",
    E.LEVEL_UP: "level",
    E.KYC_VERIFIED: "verified",
    E.DISPUTE_FILED: "match",
    E.TOURNAMENT_PLACED: "tournament",
}
_ICONS: dict[str, str] = {
    "trophy": "\U0001f3c6",
    "medal": "\U0001f3c5",
    "tournament": "\U0001f3af",
    "match": "\u2694\ufe0f",
    "win": "\u2b50",
    "coins": "\U0001fa99",
    "achievement": "\U0001f396\ufe0f",
    "team": "\U0001f465",
    "profile": "\U0001f44b",
    "level": "\u2b06\ufe0f",
    "verified": "\u2705",
    "correction": "\u21a9\ufe0f",
}


class _Fields(dict):
    """str.format_map source that shows a neutral word for anything the metadata lacks."""

    def __missing__(self, key: str) -> str:
        return {"tournament": "a tournament", "round": "", "team": "a team", "name": "an achievement"}.get(key, "")


@dataclass(frozen=True, slots=True)
class EventView:
    title: str
    detail: str
    kind: str

    @property
    def icon(self) -> str:
        return _ICONS.get(self.kind, "\u2022")


def describe(event_type: str, metadata: dict | None, amount: int | None = None) -> EventView:
    meta = metadata if isinstance(metadata, dict) else {}
    fields = _Fields({k: v for k, v in meta.items() if isinstance(v, (str, int)) and not isinstance(v, bool)})
    if amount is not None:
        fields["amount"] = f"{amount:,}"
    base = REVERSED_BASE.get(event_type)
    if base is not None:
        title = _CORRECTIONS.get(base, "Correction").format_map(fields)
        kind = "correction"
    else:
        title = _TITLES.get(event_type, event_type.replace("_", " ").capitalize()).format_map(fields)
        kind = _KINDS.get(event_type, "profile")
    title = " ".join(title.split())  # an empty {round} leaves a double space
    return EventView(title=title, detail=_detail(event_type, meta), kind=kind)


def describe_event(event) -> EventView:
    return describe(event.event_type, event.metadata, event.amount)


def _detail(event_type: str, meta: dict) -> str:
    parts: list[str] = []
    if event_type in (E.COINS_EARNED, E.COINS_SPENT):
        reason = meta.get("reason")
        return str(reason) if isinstance(reason, str) else ""
    if event_type == E.ACHIEVEMENT_UNLOCKED:
        tier = meta.get("tier")
        return f"{tier.capitalize()} achievement" if isinstance(tier, str) else ""
    game = meta.get("game")
    if isinstance(game, str) and game:
        parts.append(game.capitalize() if game.islower() else game)
    return " \u00b7 ".join(parts)
