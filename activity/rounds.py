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


def metadata_round_rank(table: str) -> RawSQL:
    """The rank of `<table>.metadata->>'round'` as SQL (a CASE over constants; unknown rounds 0)."""
    whens = " ".join("WHEN %s THEN %s" for _ in ROUND_ORDER)
    params: list[object] = []
    for name, rank in ROUND_RANK.items():
        params += [name, rank]
    sql = f"(CASE ({table}.metadata ->> 'round') {whens} ELSE 0 END)"
    return RawSQL(sql, params, output_field=IntegerField())
