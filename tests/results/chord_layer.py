"""A memory store for chord tests with a hook between a task's stored meta and its count:
the result layer stores a finished member's meta, then counts it (``part_done``), so a
test's barrier or fault placed in ``after_store`` runs exactly between the two."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from celery_gcp import Celery
from celery_gcp.results import MemoryStore, ResultStore


class HookedStore(MemoryStore):
    """A :class:`MemoryStore` that calls ``after_store(task_id, meta)`` after each write."""

    def __init__(self, after_store: Callable[[str, Mapping[str, Any]], None] | None) -> None:
        super().__init__()
        self.after_store = after_store

    def set_meta(self, task_id: str, meta: Mapping[str, Any], expires: float | None) -> None:
        super().set_meta(task_id, meta, expires)
        if self.after_store is not None:
            self.after_store(task_id, meta)


def with_store(app: Celery,
               after_store: Callable[[str, Mapping[str, Any]], None] | None = None,
               ) -> ResultStore:
    """Give ``app`` a memory store (its result layer then records and counts); returns it."""
    store = HookedStore(after_store)
    app.backend = store
    return store
