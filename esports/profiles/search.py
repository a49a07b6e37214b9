"""Find a player by display name or username: prefix matches first, then partial and misspelled names (pg_trgm word
similarity), ranked, paginated.

Ranking: 0 an exact name, 1 a name (or a word of it: a surname) starting with the query, 2 a name containing it or
a word close to it (`q <% name`: pg_trgm's word similarity >= WORD_SIMILARITY, 0.5 - "medevdev" finds Medvedev,
"wavrinka" Wawrinka; pg_trgm's default 0.6 misses both); within a rank by similarity, then by user id (a stable
order for paging). Both names are compared lowercased; the six branches of the candidate set each use their own
index (migration 0005_search_trgm): a btree prefix range per name, GIN trigram scans per name for a part of it
(LIKE '%q%', 3+ characters) and for similar words (`<%`, 5+ characters). Each branch is capped at CANDIDATES rows
so a short query costs what a full one does; a list that long is not read past its first pages anyway. Deactivated
(erased) accounts are never found.

Names are public (DESIGN §7: public IDs and names identify a player on every public page), so search applies no
profile flag; what a result links to applies its own rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from project.one_trip_reads import Read, fetch

MIN_QUERY_LENGTH = 2
MAX_QUERY_LENGTH = 100
MAX_LIMIT = 50
DEFAULT_LIMIT = 20
CANDIDATES = 200
WORD_SIMILARITY = 0.5
FUZZY_MIN_LENGTH = 5
_SALT = "profiles.search.v1"

_SQL = """
WITH candidates AS (
    (SELECT p.user_id AS id FROM profiles_userprofile p
      WHERE lower(p.display_name) LIKE %(prefix)s ORDER BY lower(p.display_name) LIMIT %(cap)s)
    UNION
    (SELECT u.id FROM auth_user u
      WHERE lower(u.username) LIKE %(prefix)s ORDER BY lower(u.username) LIMIT %(cap)s)
    UNION
    (SELECT p.user_id FROM profiles_userprofile p WHERE lower(p.display_name) LIKE %(infix)s LIMIT %(infix_cap)s)
    UNION
    (SELECT u.id FROM auth_user u WHERE lower(u.username) LIKE %(infix)s LIMIT %(infix_cap)s)
    UNION
    (SELECT p.user_id FROM profiles_userprofile p WHERE %(q)s <%% lower(p.display_name) LIMIT %(fuzzy_cap)s)
    UNION
    (SELECT u.id FROM auth_user u WHERE %(q)s <%% lower(u.username) LIMIT %(fuzzy_cap)s)
)
SELECT u.id, u.username, p.display_name, p.public_id,
       CASE WHEN lower(p.display_name) = %(q)s OR lower(u.username) = %(q)s THEN 0
            WHEN lower(p.display_name) LIKE %(prefix)s OR lower(u.username) LIKE %(prefix)s
              OR lower(p.display_name) LIKE %(word_prefix)s THEN 1
            ELSE 2 END AS rank,
       GREATEST(word_similarity(%(q)s, lower(p.display_name)), word_similarity(%(q)s, lower(u.username))) AS score
  FROM candidates c
  JOIN auth_user u ON u.id = c.id
  JOIN profiles_userprofile p ON p.user_id = u.id
 WHERE u.is_active
 ORDER BY rank, score DESC, u.id
 LIMIT %(limit)s OFFSET %(offset)s
"""

# One round trip with its settings (project/one_trip_reads.py). Planned per call with its values, never prepared: the
# LIKE patterns become ranges of the prefix indexes only when the planner sees them. The `<%` operator (the one the
# GIN index serves) compares against the threshold setting, local to the statement. No sequential scans: under a
# branch's LIMIT the planner bets that a scan of the whole table meets enough matches early, and for a name that is
# rare it reads every row (at 100k players "lesl" took 49 ms that way, 4 ms through the trigram index; "gil leslie"
# 310 ms, 12 ms); it also hashed the whole account table to join ~100 candidates to it.
_SEARCH = Read(
    _SQL,
    {
        "q": "text",
        "prefix": "text",
        "word_prefix": "text",
        "infix": "text",
        "cap": "integer",
        "infix_cap": "integer",
        "fuzzy_cap": "integer",
        "limit": "integer",
        "offset": "integer",
    },
    {"pg_trgm.word_similarity_threshold": f"{WORD_SIMILARITY!r}", "enable_seqscan": "off"},
    prepare=False,
)


class InvalidSearchError(ValueError):
    """A query or cursor the search cannot take (HTTP 400)."""

    code = "invalid_search"


@dataclass(frozen=True, slots=True)
class Hit:
    user_id: int
    username: str
    display_name: str
    public_id: str | None
    rank: int
    score: float

    @property
    def name(self) -> str:
        return self.display_name or self.username


@dataclass(frozen=True, slots=True)
class SearchPage:
    results: list[Hit]
    next_cursor: str | None
    previous_cursor: str | None


def normalize_query(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidSearchError("q must be text.")
    q = " ".join(raw.split()).lower()
    if "\x00" in q or not MIN_QUERY_LENGTH <= len(q) <= MAX_QUERY_LENGTH:
        raise InvalidSearchError(f"q must be {MIN_QUERY_LENGTH}-{MAX_QUERY_LENGTH} characters (no NUL).")
    return q


def _like_prefix(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _cursor(q: str, offset: int) -> str:
    return signing.dumps(offset, salt=f"{_SALT}:{q}")


def _offset(q: str, cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = signing.loads(cursor, salt=f"{_SALT}:{q}")
    except (signing.BadSignature, ValueError, TypeError, UnicodeError):
        raise InvalidSearchError("Invalid cursor: not a cursor of this search.") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= 4 * CANDIDATES:
        raise InvalidSearchError("Invalid cursor: malformed.")
    return offset


def _params(q: str, size: int, offset: int) -> dict[str, str | int]:
    """The search statement's parameters for a normalised query and one page."""
    return {
        "q": q,
        "prefix": _like_prefix(q),
        "word_prefix": "% " + _like_prefix(q),
        "cap": CANDIDATES,
        "infix": "%" + _like_prefix(q),
        # A part of a name (3+ characters, through the trigram index); misspellings from 5 characters: a shorter
        # query's few trigrams are close to too many names to rank (and "mrat" is rarely a misspelled "mart").
        "infix_cap": CANDIDATES if len(q) >= 3 else 0,
        "fuzzy_cap": CANDIDATES if len(q) >= FUZZY_MIN_LENGTH else 0,
        "limit": size + 1,
        "offset": offset,
    }


def search_players(raw_query: object, *, cursor: str | None = None, limit: int | None = None) -> SearchPage:
    """One page of players matching the query (default 20, at most 50); raises InvalidSearchError."""
    q = normalize_query(raw_query)
    size = DEFAULT_LIMIT if limit is None else limit
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_LIMIT:
        raise InvalidSearchError(f"limit must be an integer between 1 and {MAX_LIMIT}.")
    offset = _offset(q, cursor)
    params = _params(q, size, offset)
    rows = [Hit(*row) for row in fetch(_SEARCH, params).rows]
    more = len(rows) > size
    return SearchPage(
        results=rows[:size],
        next_cursor=_cursor(q, offset + size) if more else None,
        previous_cursor=_cursor(q, max(offset - size, 0)) if offset > 0 else None,
    )
