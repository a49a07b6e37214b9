"""Ratios shown beside the counters (win rate, tournament win rate): one definition for every stats row."""

from decimal import ROUND_HALF_UP, Decimal

from django.db.models import F, FloatField
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Cast

_HUNDRED = Decimal(100)


def percent(numerator: int, denominator: int) -> Decimal:
    """numerator / denominator in percent, 2 decimals rounded half up; 0 when the denominator is 0."""
    if not denominator:
        return Decimal(0)
    return (Decimal(numerator) * _HUNDRED / Decimal(denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# The win-rate boards' ranking key: matches won / matches played as float8 (correctly rounded, so equal fractions such
# as 2/4 and 5/10 give equal keys and tie). The SQL the boards order by and the ORM expression their indexes are built
# on are the same division: the planner serves the ORDER BY from the index only when the two match.
WIN_RATIO_SQL = "{t}.matches_won::float8 / {t}.matches_played::float8"


def win_ratio() -> CombinedExpression:
    """WIN_RATIO_SQL as an ORM expression (for index definitions); rows with matches_played > 0 only."""
    return Cast(F("matches_won"), FloatField()) / Cast(F("matches_played"), FloatField())
