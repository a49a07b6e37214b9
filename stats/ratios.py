"""Ratios shown beside the counters (win rate, tournament win rate): one definition for every stats row."""

from decimal import ROUND_HALF_UP, Decimal

_HUNDRED = Decimal(100)


def percent(numerator: int, denominator: int) -> Decimal:
    """numerator / denominator in percent, 2 decimals rounded half up; 0 when the denominator is 0."""
    if not denominator:
        return Decimal(0)
    return (Decimal(numerator) * _HUNDRED / Decimal(denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
