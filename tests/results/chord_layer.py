"""A stand-in for the result layer in chord tests: it stores each finished task's meta and
then calls ``part_done``, as the contract in celery_gcp/results/chords.py says the result
layer does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery_gcp import Celery
from celery_gcp.einfo import ExceptionInfo
from celery_gcp.layers import Layer
from celery_gcp.results import ResultStore
from celery_gcp.results.chords import failure_meta, part_done
from celery_gcp.worker.run import TaskRun


class StoringLayer(Layer):
    """Stores SUCCESS / FAILURE metas in ``store``, then counts chord members done.

    ``after_store(run)`` is called between the two (a test's barrier or fault goes there).
    """

    def __init__(self, app: Celery, store: ResultStore,
                 after_store: Callable[[TaskRun], None] | None = None) -> None:
        self.app, self.store, self.after_store = app, store, after_store

    def succeeded(self, run: TaskRun, retval: Any) -> None:
        meta = {"task_id": run.message.id, "status": "SUCCESS", "result": retval,
                "traceback": None, "children": [], "date_done": datetime.now(UTC).isoformat()}
        self._done(run, meta, "SUCCESS", retval)

    def failed(self, run: TaskRun, exc: BaseException, einfo: ExceptionInfo) -> None:
        self._done(run, failure_meta(run.message.id, exc), "FAILURE", exc)

    def _done(self, run: TaskRun, meta: dict[str, Any], state: str, result: Any) -> None:
        self.store.set_meta(run.message.id, meta, 86400)
        if self.after_store is not None:
            self.after_store(run)
        part_done(self.app, self.store, run.message, state, result)


def with_store(app: Celery, after_store: Callable[[TaskRun], None] | None = None,
               ) -> ResultStore:
    """Give ``app`` a MemoryStore and the storing layer; returns the store."""
    from celery_gcp.results import MemoryStore

    store = MemoryStore()
    app.backend = store
    app.layers.add(StoringLayer(app, store, after_store))
    return store
