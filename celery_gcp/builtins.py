"""Celery's built-in tasks that canvas needs: ``celery.map`` and ``celery.starmap``.

``task.map(it)``, ``task.starmap(it)`` and each part of ``task.chunks(it, n)`` are one task
that calls ``task`` once per item, in the worker that runs it, as Celery's do. They are
served like any task: every app's router has their endpoints (:func:`ensure`), and an
eager run registers them on first use.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["MAP", "STARMAP", "ensure"]

MAP = "celery.map"
STARMAP = "celery.starmap"


def ensure(app: Celery) -> None:
    """Register ``celery.map`` and ``celery.starmap`` with ``app`` (once)."""
    if MAP in app.tasks:
        return

    @app.task(name=MAP)
    def xmap(task: dict[str, Any], it: list[Any]) -> list[Any]:
        """Call ``task`` with each item of ``it``; the results, in order."""
        fn = _target(app, task)
        return [_done(fn(item)) for item in it]

    @app.task(name=STARMAP)
    def xstarmap(task: dict[str, Any], it: list[list[Any]]) -> list[Any]:
        """Call ``task`` with each item of ``it`` as its positional arguments."""
        fn = _target(app, task)
        return [_done(fn(*item)) for item in it]


def _target(app: Celery, task: dict[str, Any]) -> Any:
    from .exceptions import NotRegistered

    name = task.get("task")
    target = app.tasks.get(str(name))
    if target is None:
        raise NotRegistered(f"{name!r}: the task map/starmap calls is not registered here")
    return target


def _done(value: Any) -> Any:
    # An async task called directly returns its coroutine: finish it here.
    if asyncio.iscoroutine(value):
        from .worker.run import _run_coroutine

        return _run_coroutine(value)
    return value
