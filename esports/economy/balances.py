"""Wallet caches and the profile mirror computed from the transactions, set-based, one wallet-id range at a time.

The truth is the transaction history. `find_drift` compares a range of wallets with it (and the mirror with the
wallet) in one statement; `refresh_wallets` sets the caches of a range (or of given wallets) to it, under the wallet
locks the service takes, so a concurrent credit can neither be overwritten nor counted twice. Bulk generators that
insert transactions without the service call `refresh_wallets` over what they wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction

# A reversal counts on the side it cancels (see services._apply): earning side = positive plain or negative reversal.
TRANSACTION_SUMS_SQL = """
SELECT wallet_id,
       COALESCE(SUM(amount) FILTER (WHERE (amount > 0) = (reverses_id IS NULL)), 0) AS earned,
       COALESCE(-SUM(amount) FILTER (WHERE (amount > 0) <> (reverses_id IS NULL)), 0) AS spent
  FROM economy_deltacrowntransaction
 WHERE wallet_id >= %(lo)s AND wallet_id < %(hi)s
 GROUP BY wallet_id
"""

_DRIFT = f"""
WITH sums AS ({TRANSACTION_SUMS_SQL})
SELECT w.id, w.profile_id,
       w.cached_balance, w.lifetime_earned, w.lifetime_spent,
       COALESCE(s.earned, 0) - COALESCE(s.spent, 0), COALESCE(s.earned, 0), COALESCE(s.spent, 0),
       p.deltacoin_balance, p.lifetime_earnings
  FROM economy_deltacrownwallet w
  LEFT JOIN sums s ON s.wallet_id = w.id
  JOIN profiles_userprofile p ON p.user_id = w.profile_id
 WHERE w.id >= %(lo)s AND w.id < %(hi)s AND (%(user_id)s::bigint IS NULL OR w.profile_id = %(user_id)s)
   AND ((w.cached_balance, w.lifetime_earned, w.lifetime_spent)
            IS DISTINCT FROM (COALESCE(s.earned, 0) - COALESCE(s.spent, 0), COALESCE(s.earned, 0), COALESCE(s.spent, 0))
        OR (p.deltacoin_balance, p.lifetime_earnings)
            IS DISTINCT FROM (COALESCE(s.earned, 0) - COALESCE(s.spent, 0), COALESCE(s.earned, 0)))
 ORDER BY w.id
"""

_LOCK = """
SELECT id FROM economy_deltacrownwallet
 WHERE id >= %(lo)s AND id < %(hi)s AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
 ORDER BY id FOR UPDATE
"""

_REFRESH_WALLETS = f"""
WITH sums AS ({TRANSACTION_SUMS_SQL})
UPDATE economy_deltacrownwallet w
   SET cached_balance = COALESCE(s.earned, 0) - COALESCE(s.spent, 0),
       lifetime_earned = COALESCE(s.earned, 0), lifetime_spent = COALESCE(s.spent, 0)
  FROM economy_deltacrownwallet w2 LEFT JOIN sums s ON s.wallet_id = w2.id
 WHERE w.id = w2.id AND w.id >= %(lo)s AND w.id < %(hi)s AND (%(ids)s::bigint[] IS NULL OR w.id = ANY(%(ids)s))
   AND (w.cached_balance, w.lifetime_earned, w.lifetime_spent)
       IS DISTINCT FROM (COALESCE(s.earned, 0) - COALESCE(s.spent, 0), COALESCE(s.earned, 0), COALESCE(s.spent, 0))
   -- A history that overdraws (raw SQL only: the service refuses) cannot be cached under the wallet's CHECKs; such a
   -- wallet is left as it is and reported unrepairable (WalletDrift.repairable), never half-written.
   AND COALESCE(s.earned, 0) >= COALESCE(s.spent, 0) AND COALESCE(s.spent, 0) >= 0
"""

_REFRESH_MIRROR = """
UPDATE profiles_userprofile p
   SET deltacoin_balance = w.cached_balance, lifetime_earnings = w.lifetime_earned
  FROM economy_deltacrownwallet w
 WHERE w.profile_id = p.user_id AND w.id >= %(lo)s AND w.id < %(hi)s
   AND (%(ids)s::bigint[] IS NULL OR w.id = ANY(%(ids)s))
   AND (p.deltacoin_balance, p.lifetime_earnings) IS DISTINCT FROM (w.cached_balance, w.lifetime_earned)
"""


@dataclass(frozen=True)
class WalletDrift:
    wallet_id: int
    user_id: int
    cached: tuple[int, int, int]  # (balance, earned, spent) on the wallet
    expected: tuple[int, int, int]  # the same from the transactions
    mirror: tuple[int, int]  # (deltacoin_balance, lifetime_earnings) on the profile

    @property
    def kinds(self) -> list[str]:
        """'wallet' when the caches differ from the transactions, 'mirror' when the profile differs from them."""
        kinds = ["wallet"] if self.cached != self.expected else []
        return kinds + (["mirror"] if self.mirror != self.expected[:2] else [])

    @property
    def repairable(self) -> bool:
        """False when the transactions themselves overdraw (balance or spending below 0): no cache can hold that
        under the wallet's CHECK constraints, so the history needs a person (a reversing credit), not a refresh."""
        balance, _earned, spent = self.expected
        return balance >= 0 and spent >= 0


def wallet_id_bounds() -> tuple[int, int] | None:
    """(lowest id, highest id + 1) of the wallets, None when there are none."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT MIN(id), MAX(id) FROM economy_deltacrownwallet")
        lo, hi = cursor.fetchone()
    return None if lo is None else (lo, hi + 1)


def find_drift(lo: int, hi: int, user_id: int | None = None) -> list[WalletDrift]:
    """The wallets with lo <= id < hi whose caches or mirror differ from their transactions (one statement)."""
    with connection.cursor() as cursor:
        cursor.execute(_DRIFT, {"lo": lo, "hi": hi, "user_id": user_id})
        return [
            WalletDrift(r[0], r[1], (r[2], r[3], r[4]), (r[5], r[6], r[7]), (r[8], r[9])) for r in cursor.fetchall()
        ]


def refresh_wallets(lo: int, hi: int, wallet_ids: Sequence[int] | None = None) -> tuple[int, int]:
    """Set the caches and mirror of the wallets in [lo, hi) (only `wallet_ids` when given) to their transactions.

    Returns (wallets changed, profiles changed). The wallets are locked first, in id order (as the service locks
    one): a movement in flight finishes before, or waits until after, the recomputation.
    """
    params = {"lo": lo, "hi": hi, "ids": list(wallet_ids) if wallet_ids is not None else None}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK, params)
        cursor.execute(_REFRESH_WALLETS, params)
        wallets = cursor.rowcount
        cursor.execute(_REFRESH_MIRROR, params)
        return wallets, cursor.rowcount


def refresh_all_wallets(batch_size: int = 10_000) -> tuple[int, int]:
    """refresh_wallets over every wallet, one id range per transaction (for bulk generators and imports)."""
    bounds = wallet_id_bounds()
    changed = (0, 0)
    if bounds is None:
        return changed
    for lo in range(bounds[0], bounds[1], batch_size):
        w, p = refresh_wallets(lo, min(lo + batch_size, bounds[1]))
        changed = (changed[0] + w, changed[1] + p)
    return changed


def refresh_wallets_of(wallet_ids: Sequence[int], batch_size: int = 10_000) -> tuple[int, int]:
    """refresh_wallets for the given wallets, `batch_size` ids per transaction (after a bulk insert of theirs)."""
    ids = sorted(set(wallet_ids))
    changed = (0, 0)
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        w, p = refresh_wallets(chunk[0], chunk[-1] + 1, chunk)
        changed = (changed[0] + w, changed[1] + p)
    return changed


def copy_wallet_to_mirror(user_id: int) -> int:
    """Set the profile's mirror to its wallet as it stands (after a wallet changed hands, e.g. to an erasure's
    tombstone); returns the profiles changed. Drift of the wallet itself is left for reconcile_economy to see."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE profiles_userprofile p SET deltacoin_balance = w.cached_balance, "
            "lifetime_earnings = w.lifetime_earned FROM economy_deltacrownwallet w "
            "WHERE w.profile_id = p.user_id AND p.user_id = %s",
            [user_id],
        )
        return cursor.rowcount
