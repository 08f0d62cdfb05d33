"""Result stores under test: every store of STORE_KINDS runs the contract in test_store.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celery_gcp.results import MemoryStore, ResultStore

#: The store kinds the contract runs against (each store's fixture module adds its kind).
STORE_KINDS = ["memory"]


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest) -> Iterator[ResultStore]:
    """A fresh, empty store of each kind."""
    if request.param == "memory":
        yield MemoryStore()
        return
    raise AssertionError(f"no fixture for store kind {request.param!r}")  # pragma: no cover
