"""Whether ``result.get()`` may wait here, as Celery decides it.

Inside a task run by a worker, ``get()`` raises ``RuntimeError`` (it would hold the worker's
request until another task finishes) unless called with ``disable_sync_subtasks=False`` or
inside :func:`allow_join_result`; :func:`denied_join_result` makes it raise anywhere. Both
are Celery's context managers, under ``celery_gcp.result`` as under ``celery.result``.

Example::

    @app.task
    def report(ids):
        with allow_join_result():  # knowingly wait for another task
            return fetch.delay(ids).get(timeout=30)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["allow_join_result", "assert_will_not_block", "denied_join_result"]

_WOULD_BLOCK = (
    "Never call result.get() within a task: it blocks the worker's request until another "
    "task finishes (set disable_sync_subtasks=False, or wrap the call in "
    "celery_gcp.result.allow_join_result(), to do it anyway; or chain the tasks)."
)
#: ``True`` inside :func:`allow_join_result`, ``False`` inside :func:`denied_join_result`,
#: ``None`` (decided by the current run) elsewhere; per thread and per asyncio task.
_JOIN: ContextVar[bool | None] = ContextVar("celery_gcp_join_result", default=None)


def assert_will_not_block() -> None:
    """``RuntimeError`` inside a task run by a worker, as Celery's ``get()`` raises (not
    within :func:`allow_join_result`; always within :func:`denied_join_result`)."""
    allowed = _JOIN.get()
    if allowed is None:
        from ..context import current_request

        request = current_request()
        allowed = request is None or request.is_eager
    if not allowed:
        raise RuntimeError(_WOULD_BLOCK)


@contextmanager
def allow_join_result() -> Iterator[None]:
    """Let ``get()`` wait inside a task, as Celery's ``allow_join_result``."""
    token = _JOIN.set(True)
    try:
        yield
    finally:
        _JOIN.reset(token)


@contextmanager
def denied_join_result() -> Iterator[None]:
    """Make ``get()`` refuse to wait, even outside a task, as Celery's
    ``denied_join_result``."""
    token = _JOIN.set(False)
    try:
        yield
    finally:
        _JOIN.reset(token)
