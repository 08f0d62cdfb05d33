"""Celery's built-in tasks that canvas needs: ``celery.map``, ``celery.starmap`` and
``celery.accumulate``.

``task.map(it)``, ``task.starmap(it)`` and each part of ``task.chunks(it, n)`` are one task
that calls ``task`` once per item, in the worker that runs it, as Celery's do;
``celery.accumulate`` is the body of the chord a group becomes when it replaces a task
(``self.replace(group(...))``), so the replaced task's result is the group's results. They
are served like any task: every app's router has their endpoints (:func:`ensure`), and an
eager run registers them on first use.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["ACCUMULATE", "MAP", "STARMAP", "ensure"]

MAP = "celery.map"
STARMAP = "celery.starmap"
ACCUMULATE = "celery.accumulate"


def ensure(app: Celery) -> None:
    """Register ``celery.map``, ``celery.starmap`` and ``celery.accumulate`` with ``app``
    (once)."""
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

    @app.task(name=ACCUMULATE)
    def accumulate(*args: Any, index: int | None = None) -> Any:
        """Its arguments (a chord's results, as its body), or the one at ``index``."""
        return list(args) if index is None else args[index]


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
