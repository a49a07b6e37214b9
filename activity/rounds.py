"""The order of knockout rounds within a tournament (DESIGN §5): ER < R128 < R64 < R32 < R16 < RR < QF < SF < BR < F.

Matches of one tournament share a date in imported history, so lists order by (date, round rank): the final is the
tournament's latest match. A round the table does not know (a synthetic "R1") sorts before every known one.
"""

from __future__ import annotations

from django.db.models import IntegerField
from django.db.models.expressions import RawSQL

ROUND_ORDER: tuple[str, ...] = ("ER", "R128", "R64", "R32", "R16", "RR", "QF", "SF", "BR", "F")
ROUND_RANK: dict[str, int] = {name: rank for rank, name in enumerate(ROUND_ORDER, start=1)}


def round_rank(name: str | None) -> int:
    return ROUND_RANK.get(name or "", 0)


def round_rank_case(metadata_column: str) -> str:
    """The rank of `<metadata_column> ->> 'round'` as a SQL CASE over constants (unknown rounds 0).

    Literal constants, not parameters, and character for character the expression of the index that serves the
    match lists' order (activity migration 0010_match_round_order_idx): PostgreSQL uses an expression index only
    for the same expression. Built from ROUND_RANK alone (no input reaches it)."""
    whens = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in ROUND_RANK.items())
    return f"CASE ({metadata_column} ->> 'round') {whens} ELSE 0 END"


def metadata_round_rank(table: str) -> RawSQL:
    """The rank of `<table>.metadata->>'round'` as an ORM expression."""
    return RawSQL(f"({round_rank_case(f'{table}.metadata')})", (), output_field=IntegerField())
