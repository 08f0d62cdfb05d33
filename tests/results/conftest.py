"""Result stores under test: every store of STORE_KINDS runs the contract in test_store.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_gcp.results import MemoryStore, ResultStore

from ..redis_server import RedisServer, redis_server
from .pg_server import postgres_server

#: The store kinds the contract runs against.
STORE_KINDS = ["memory", "redis", "sqlite", "postgresql"]
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
    if request.param in ("sqlite", "postgresql"):
        yield from sql_store(request, request.param)
        return
    raise AssertionError(f"no fixture for store kind {request.param!r}")  # pragma: no cover


def sql_store(request: pytest.FixtureRequest, kind: str) -> Iterator[ResultStore]:
    """A SqlStore on a new SQLite file or a new PostgreSQL database, closed (and the
    database dropped) after the test."""
    from celery_gcp.results.sql_store import SqlStore

    if kind == "sqlite":
        tmp_path: Path = request.getfixturevalue("tmp_path")
        store = SqlStore(f"db+sqlite:///{tmp_path / 'results.db'}")
        yield store
        store.close()
        return
    server = request.getfixturevalue("postgres_server")
    url = server.fresh_database()
    store = SqlStore("db+" + url)
    yield store
    store.close()
    server.drop_database(url)


__all__ = ["STORE_KINDS", "postgres_server", "redis_server", "sql_store", "store"]
