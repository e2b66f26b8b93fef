"""The Redis cache backend, reusing its client.

Django's ``RedisCacheClient`` builds a new ``redis.Redis`` object for every cache
operation (it shares the connection pool, but the object's set-up - response
callbacks and all - costs more than the round trip on a decision's hot path). A
``redis.Redis`` is thread-safe and cheap to keep, so this backend keeps one per pool.
"""

from __future__ import annotations

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
