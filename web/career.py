"""The profile's career section: the season-by-season record and the charts drawn from it and from the recent form."""

from __future__ import annotations

from stats import cache as stats_cache
from stats.ratings.curve import rating_curves
from stats.selectors.seasons import SeasonRow, season_table
from web.charts import Series, bar_chart, form_chart, step_chart

FORM_LENGTH = 20
SEASONS_TTL = 300  # like the lifetime stats: under the player's stats generation, so a change drops it at once
_FORM_LETTER = {"won": "W", "lost": "L", "forfeit": "WO"}


def form_letters(matches_newest_first) -> list[str]:
    return [_FORM_LETTER[str(m.outcome)] for m in reversed(list(matches_newest_first))]


def career_charts(profile, recent_matches) -> dict:
    """Charts of the profile page; `recent_matches` the latest FORM_LENGTH matches (newest first), or None when the
    viewer may not see the match history (no form chart then: it is match history)."""
    name = profile.display_name or profile.user.get_username()
    seasons: list[SeasonRow] = stats_cache.generational_get(
        f"seasons:v3:{profile.pk}",
        stats_cache.generation_key(profile.pk),
        lambda: season_table(profile.pk),
        SEASONS_TTL,
    )
    labels = [str(s.season) for s in seasons]
    charts: dict[str, object] = {"seasons": seasons}
    if seasons:
        charts["record_chart"] = bar_chart(
            f"{name}: matches won and lost per season",
            "; ".join(f"{s.season}: {s.wins} won, {s.losses} lost" for s in seasons) + ".",
            labels,
            [
                Series("won", "solid", [s.wins for s in seasons], "#2f8f4e"),
                Series("lost", "hatch", [s.losses for s in seasons]),
            ],
        )
        charts["titles_chart"] = bar_chart(
            f"{name}: titles per season",
            "; ".join(f"{s.season}: {s.titles} titles" for s in seasons) + ".",
            labels,
            [Series("titles", "solid", [s.titles for s in seasons], "#c08a00")],
        )
    if recent_matches is not None:
        form = form_letters(recent_matches)
        charts["form"] = form
        charts["form_chart"] = form_chart(f"{name}: recent form", form)
    return charts


def rating_charts(profile, relation) -> list[dict]:
    """One rating-over-time chart per rated game (one bounded query for all of them); none when the viewer may not
    see the match history - the curve is the match history in another form, hidden as the rating-history API is."""
    if not relation.can_see_match_history:
        return []
    name = profile.display_name or profile.user.get_username()
    charts = []
    for c in rating_curves(relation):
        shown = (
            "every rated match"
            if len(c.points) == c.matches_rated
            else f"{len(c.points)} points: the first, the peak, evenly spaced"
        )
        desc = (
            f"{c.matches_rated} rated matches ({shown}), from {c.points[0].at:%Y-%m-%d} to {c.points[-1].at:%Y-%m-%d}:"
            f" first {c.first:.0f}, last {c.last:.0f}, peak {c.peak:.0f}."
        )
        points = [(f"{p.at:%Y-%m-%d}", p.rating) for p in c.points]
        svg = step_chart(f"{name}: {c.game} Elo rating over time", desc, points, peak=c.peak)
        charts.append({"game": c.game, "curve": c, "chart": svg})
    return charts
