"""The users one ledger -> stats comparison statement covers: a range of user ids, or a list of them.

Each kind spells its filter on a user-id column once (`where`, the same for every set of the kind, so a statement's
text is built once per kind) and gives its values as the statement's parameters (`params`, once per use of `where`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from esports.profiles.models import UserProfile

MAX_ID = 2**63 - 1


class UserSet(Protocol):
    kind: ClassVar[str]

    @staticmethod
    def where(column: str) -> str: ...

    def params(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class UserRange:
    """The user ids in (lo, hi]."""

    kind: ClassVar[str] = "range"
    lo: int
    hi: int

    @staticmethod
    def where(column: str) -> str:
        return f"{column} > %s AND {column} <= %s"

    def params(self) -> list[Any]:
        return [self.lo, self.hi]

    def __str__(self) -> str:
        return f"users up to {self.hi if self.hi != MAX_ID else 'the last'}"


@dataclass(frozen=True, slots=True)
class UserIds:
    """These user ids (sorted, distinct)."""

    kind: ClassVar[str] = "ids"
    ids: tuple[int, ...]

    @staticmethod
    def where(column: str) -> str:
        return f"{column} = ANY(%s::bigint[])"

    def params(self) -> list[Any]:
        return [list(self.ids)]

    def __str__(self) -> str:
        return f"{len(self.ids)} user(s) {self.ids[0]}..{self.ids[-1]}" if self.ids else "no users"


USER_SETS: dict[str, type[UserRange] | type[UserIds]] = {cls.kind: cls for cls in (UserRange, UserIds)}


def one_user(user_id: int) -> UserRange:
    return UserRange(user_id - 1, user_id)


def in_chunks(ids: Sequence[int], size: int) -> Iterator[UserIds]:
    """Sorted distinct `ids` as sets of at most `size` users."""
    for start in range(0, len(ids), size):
        yield UserIds(tuple(ids[start : start + size]))


def every_user(size: int) -> Iterator[UserRange]:
    """Ranges of `size` profile ids covering every id: the last one is open-ended, so ledger users above the highest
    profile id (there should be none) are compared too. One index probe per range."""
    lo = 0
    while True:
        boundary = list(
            UserProfile.objects.filter(pk__gt=lo).order_by("pk").values_list("pk", flat=True)[size - 1 : size]
        )
        if not boundary:
            yield UserRange(lo, MAX_ID)
            return
        yield UserRange(lo, boundary[0])
        lo = boundary[0]
