"""Lifetime stats cached in the real Redis for 5 minutes, and fresh on the next read after any change commits."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection, transaction

from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.recording import record_events_for
from stats import cache as stats_cache
from stats.recompute import recompute_stats
from stats.selectors.lifetime import cached_stats, load_stats
from tests.factories import TransactionFactory, UserFactory
from tests.read_side import event, record

pytestmark = [pytest.mark.usefixtures("fresh_cache", "enqueued")]


def _redis() -> redis.Redis:
    return redis.Redis.from_url(str(django_settings.CACHES["default"]["LOCATION"]))


@pytest.mark.django_db
def test_the_cache_is_the_real_redis_with_a_five_minute_ttl():
    assert django_settings.CACHES["default"]["BACKEND"] == "project.redis_cache.RedisCache"
    user = UserFactory()
    cached_stats(user.pk)
    ttl = _redis().ttl(cache.make_key(stats_cache.value_key(user.pk)))
    assert 0 < ttl <= stats_cache.STATS_TTL == 300


@pytest.mark.django_db
def test_a_second_read_is_served_without_touching_the_database(django_assert_num_queries):
    user = UserFactory()
    record(event(user, E.TOURNAMENT_WON))
    with django_assert_num_queries(1):
        first = cached_stats(user.pk)
    with django_assert_num_queries(0):
        assert cached_stats(user.pk) == first
    assert first["tournaments_won"] == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_recorded_through_the_real_path_gives_fresh_numbers_on_the_next_read(django_assert_num_queries):
    payment = TransactionFactory(amount=120)
    user_id = payment.wallet.profile_id
    assert cached_stats(user_id)["total_earned"] == 0  # nothing recorded yet; now cached

    record_events_for("economy.deltacrowntransaction", [payment.pk])  # commits; invalidation runs after commit

    with django_assert_num_queries(1):
        assert cached_stats(user_id)["total_earned"] == 120
    with django_assert_num_queries(0):
        assert cached_stats(user_id)["total_earned"] == 120


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_append_leaves_the_cached_value_in_place(django_assert_num_queries):
    user = UserFactory()
    record(event(user, E.MATCH_PLAYED))
    before = cached_stats(user.pk)
    with pytest.raises(RuntimeError), transaction.atomic():
        record(event(user, E.MATCH_PLAYED))
        raise RuntimeError("abort")
    with django_assert_num_queries(0):
        assert cached_stats(user.pk) == before
    assert before["matches_played"] == load_stats(user.pk)["matches_played"] == 1


@pytest.mark.django_db(transaction=True)
def test_only_the_users_an_append_touched_are_invalidated(django_assert_num_queries):
    touched, untouched = UserFactory(), UserFactory()
    cached_stats(touched.pk)
    cached_stats(untouched.pk)
    record(event(touched, E.ACHIEVEMENT_UNLOCKED, meta={"code": "x", "name": "X", "tier": "minor"}))
    with django_assert_num_queries(0):
        cached_stats(untouched.pk)
    with django_assert_num_queries(1):
        assert cached_stats(touched.pk)["achievements_count"] == 1


@pytest.mark.django_db(transaction=True)
def test_recompute_stats_invalidates_the_users_it_rewrites():
    user = UserFactory()
    assert cached_stats(user.pk)["matches_won"] == 0
    # Events written around the projection (as a bulk import would) change nothing until the recompute.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {UserActivity._meta.db_table} (user_id, event_type, timestamp, recorded_at, metadata, "
            "source_model, source_id, seq, visibility) "
            "VALUES (%s, 'match_won', now(), now(), '{}', 'tournaments.match', 987654, 1, 'public')",
            [user.pk],
        )
    assert cached_stats(user.pk)["matches_won"] == 0  # still the cached value: nothing told the cache
    recompute_stats([user.pk])
    assert cached_stats(user.pk)["matches_won"] == 1


@pytest.mark.django_db
def test_a_value_computed_before_an_invalidation_is_never_served_even_if_stored_after_it():
    user = UserFactory()
    calls = []

    def slow_reader_load() -> dict:
        # The reader has taken the generation and read the database; a writer commits and invalidates now, before
        # the reader stores what it read.
        calls.append("load")
        stats_cache.invalidate([user.pk])
        return {"stale": True}

    key, gen = stats_cache.value_key(user.pk), stats_cache.generation_key(user.pk)
    assert stats_cache.generational_get(key, gen, slow_reader_load, 300) == {"stale": True}
    fresh = stats_cache.generational_get(key, gen, lambda: {"stale": False}, 300)
    assert fresh == {"stale": False}, "a value read before the invalidation was served after it"
    assert stats_cache.generational_get(key, gen, lambda: {"stale": None}, 300) == {"stale": False}


@pytest.mark.django_db
def test_an_unreachable_redis_degrades_to_database_reads(settings, caplog):
    user = UserFactory()
    record(event(user, E.TOURNAMENT_WON))
    config = dict(settings.CACHES["default"], LOCATION="redis://127.0.0.1:1/0")  # nothing listens on port 1
    settings.CACHES = {"default": config}
    assert cached_stats(user.pk)["tournaments_won"] == 1
    stats_cache.invalidate([user.pk])  # must not raise either
    assert "cache unavailable" in caplog.text


def test_cache_calls_share_one_redis_client_per_pool():
    # Django's backend built a redis.Redis (copying ~170 response callbacks) for every call (project/redis_cache.py).
    client = cache._cache.get_client()
    assert cache._cache.get_client(write=True) is client
    cache.set("reuse-probe", 1, 5)
    assert cache.get("reuse-probe") == 1 and cache._cache.get_client() is client
