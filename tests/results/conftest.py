"""Result stores under test: every store of STORE_KINDS runs the contract in test_store.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_gcp.results import MemoryStore, ResultStore

from .pg_server import postgres_server

#: The store kinds the contract runs against (each store's fixture module adds its kind).
STORE_KINDS = ["memory"]
STORE_KINDS += ["sqlite", "postgresql"]


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest) -> Iterator[ResultStore]:
    """A fresh, empty store of each kind."""
    if request.param == "memory":
        yield MemoryStore()
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


__all__ = ["STORE_KINDS", "postgres_server", "sql_store", "store"]
