"""Result stores under test: every store of STORE_KINDS runs the contract in test_store.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celery_gcp.results import MemoryStore, ResultStore

from ..redis_server import RedisServer, redis_server  # noqa: F401 - the session fixture

#: The store kinds the contract runs against (each store's fixture module adds its kind).
STORE_KINDS = ["memory", "redis"]
#: The Redis database the store fixture uses (other users of the server take others).
REDIS_DB = 1


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest) -> Iterator[ResultStore]:
    """A fresh, empty store of each kind."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "redis":
        from celery_gcp.results.redis_store import RedisStore

        server: RedisServer = request.getfixturevalue("redis_server")
        server.client(REDIS_DB).flushdb()
        redis_store = RedisStore(server.url(REDIS_DB))
        yield redis_store
        redis_store.close()
        return
    raise AssertionError(f"no fixture for store kind {request.param!r}")  # pragma: no cover
