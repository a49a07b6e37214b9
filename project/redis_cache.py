"""Django's Redis cache backend, with one redis-py client per connection pool instead of one per cache call.

Django's RedisCacheClient.get_client builds a new `redis.Redis` for every get, set or get_many; each build copies
redis-py's table of ~170 response callbacks into a fresh case-insensitive dict. A cold profile page makes about ten
cache calls, and the builds were a measurable part of it (~0.35 ms each under the profiler at 100k players). A
`redis.Redis` takes a connection from its pool per command and is safe to share, so one per pool is kept.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None or client.connection_pool is not pool:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
