"""Eager runs: a task run here, in the calling process, as Celery's ``task_always_eager`` and
``apply()`` run it (retries run again at once), through the same :class:`~.run.TaskRun` a
worker uses. ``_run_coroutine`` runs an async task's coroutine from sync code.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..exceptions import ImproperlyConfigured, ResultStoreError
from ..result import EagerResult
from .outcomes import Outcome
from .run import RunResult, TaskRun, run_async, run_sync

if TYPE_CHECKING:
    from ..message import Message
    from ..task import Task

__all__ = ["arun_eagerly", "refuse_eager_dependencies", "run_eagerly"]


def refuse_eager_dependencies(task: Task[..., Any]) -> None:
    """Raise :class:`ImproperlyConfigured` if ``task`` declares FastAPI dependencies, which
    eager mode cannot resolve (they need a request)."""
    if task.arguments.dependencies:
        names = ", ".join(p.name for p in task.arguments.dependencies)
        raise ImproperlyConfigured(
            f"task {task.name!r} declares FastAPI dependencies ({names}), which only a worker "
            "request can resolve; eager mode cannot run it. Test it through the worker "
            "(celery_gcp.testing.deliver), or move the dependency into the task body."
        )


def _eager_values(task: Task[..., Any], message: Message) -> dict[str, Any]:
    refuse_eager_dependencies(task)
    return task.arguments.decode(message.body)


def _eager_result(task: Task[..., Any], message: Message, result: RunResult,
                  propagate: bool) -> EagerResult[Any]:
    if isinstance(result.retval, ResultStoreError):
        raise result.retval  # the caller asked to store the eager result: say it could not
    if propagate and result.outcome in _PROPAGATED:
        raise result.retval
    return EagerResult(message.id, result.retval, result.state, result.traceback, task.name)


# As in Celery, Ignore and Reject end quietly even when eager runs propagate errors.
_PROPAGATED = frozenset({Outcome.FAILURE, Outcome.REDELIVER, Outcome.RETRY})


def run_eagerly(task: Task[..., Any], message: Message, *, propagate: bool) -> EagerResult[Any]:
    """Run ``message`` here, as Celery's eager mode does: retries run again at once."""
    while True:
        result = run_sync(TaskRun(task, message, _eager_values(task, message), eager=True))
        message, done = _eager_next(task, message, result, propagate)
        if done is not None:
            return done


async def arun_eagerly(task: Task[..., Any], message: Message, *,
                       propagate: bool) -> EagerResult[Any]:
    """Async :func:`run_eagerly`; a sync task runs in a worker thread."""
    while True:
        run = TaskRun(task, message, _eager_values(task, message), eager=True)
        result = await (run_async(run) if task.is_async else asyncio.to_thread(run_sync, run))
        message, done = _eager_next(task, message, result, propagate)
        if done is not None:
            return done


def _eager_next(task: Task[..., Any], message: Message, result: RunResult, propagate: bool,
                ) -> tuple[Message, EagerResult[Any] | None]:
    """After an eager run: the retry's message to run next, or the run's result."""
    if result.outcome is Outcome.RETRY and result.retry_message is not None and not propagate:
        return result.retry_message, None
    return message, _eager_result(task, message, result, propagate)
