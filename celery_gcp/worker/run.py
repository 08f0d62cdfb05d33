"""One run of a task, shared by the HTTP worker and eager mode.

A run pushes ``self.request``, runs the layers' ``before_run`` step (``task_prerun``), calls
``before_start``, calls the task, and then settles the outcome: the task's hooks, the layers'
steps (Celery's signals among them), callbacks (``link``) or errbacks (``link_error``),
autoretry, and the :class:`~celery_gcp.worker.outcomes.Outcome` that the worker turns into an
HTTP status. Sync and async tasks share every step but the call itself.

A layer's ``before_run``, ``succeeded``, ``retried`` and ``failed`` steps may return an
awaitable (a result store's write, on the async path: :attr:`TaskRun.asynchronous`); the run
awaits it before it goes on. A :class:`~celery_gcp.exceptions.ResultStoreError` from a step
ends the run as ``REQUEUE`` (503): Cloud Tasks delivers the task again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import logfields
from ..canvas import maybe_signature
from ..context import CloudTasksDelivery, Context, pop_request, push_request
from ..einfo import ExceptionInfo
from ..exceptions import ResultStoreError, Retry, TaskPredicate
from ..message import GROUP, GROUP_INDEX
from ..results.chords import body_of
from ..results.layer import ignores_result
from ..utils.time import get_exponential_backoff_interval
from .outcomes import STATE, Outcome, classify

if TYPE_CHECKING:
    from ..message import Message
    from ..task import Task

__all__ = ["RunResult", "TaskRun", "run_async", "run_sync"]

logger = logging.getLogger("celery_gcp.worker")
_HOSTNAME = socket.gethostname()
#: A worker run's ``request.hostname``: Celery's default node name (``celery@%h``); an eager
#: run has the bare host name, as Celery's ``apply()`` gives it.
_NODENAME = f"celery@{_HOSTNAME}"
logfields.install()  # a run's log records carry its task's fields


@dataclass(slots=True)
class RunResult:
    """How a run ended: the outcome, the Celery state, the return value or exception."""

    outcome: Outcome
    retval: Any
    traceback: str | None = None
    retry_message: Message | None = None

    @property
    def state(self) -> str:
        """The Celery state of the task after this run."""
        return STATE[self.outcome]


class TaskRun:
    """One run of ``task`` for ``message``, whose body ``values`` were already validated.

    Use ``start()``, then call :attr:`call` (awaiting it for async tasks), then ``succeeded``
    or ``failed``, then ``finish``; :func:`run_sync` and :func:`run_async` do exactly that.
    """

    def __init__(self, task: Task[..., Any], message: Message, values: dict[str, Any],
                 dependencies: dict[str, Any] | None = None, *, eager: bool = False,
                 cloudtasks: CloudTasksDelivery | None = None) -> None:
        self.task = task
        self.message = message
        self.args, self.kwargs = task.arguments.call_args(values)
        self.dependencies = dependencies or {}
        self.request = Context(
            id=message.id, task=task.name, args=self.args, kwargs=self.kwargs,
            retries=message.retries, is_eager=eager, called_directly=False, eta=message.eta,
            expires=message.expires, headers=dict(message.headers) or None,
            root_id=message.root_id, parent_id=message.parent_id,
            delivery_info={
                "routing_key": message.queue, "queue": message.queue, "exchange": "",
                "priority": None, "is_eager": eager,
                "redelivered": bool(cloudtasks and cloudtasks.retry_count),
            },
            callbacks=list(message.link) or None, errbacks=list(message.link_error) or None,
            hostname=_HOSTNAME if eager else _NODENAME,
            ignore_result=ignores_result(task, message), cloudtasks=cloudtasks,
            group=message.headers.get(GROUP), group_index=message.headers.get(GROUP_INDEX),
            chord=body_of(message),
        )
        self._token: Any = None
        self._started = 0.0
        self.step = task.app.layers.step
        #: Whether the run is driven on an event loop (:func:`run_async`): layers then return
        #: awaitables for their I/O instead of blocking.
        self.asynchronous = False
        #: Awaitables returned by the layers' steps, awaited in order before the run goes on.
        self.awaiting: list[Awaitable[Any]] = []

    def _each(self, step: str, *args: Any) -> None:
        for call in self.step(step):
            pending = call(self, *args)
            if pending is not None:
                self.awaiting.append(pending)

    def announce(self) -> TaskRun:
        """Run the layers' ``received`` step (``task_received``); returns the run."""
        for received in self.step("received"):
            received(self)
        return self

    def start(self) -> None:
        """Push the request and run the before-hooks."""
        self._token = push_request(self.task, self.request)
        self._started = time.perf_counter()
        self._each("before_run")
        self.task.before_start(self.message.id, self.args, self.kwargs)

    @property
    def runtime(self) -> float:
        """Seconds since the run started (its body and what ran before it in this run)."""
        return time.perf_counter() - self._started

    def call(self) -> Any:
        """Call the task (through a custom ``__call__`` if the task class has one)."""
        return self.task(*self.args, **self.kwargs, **self.dependencies)

    def succeeded(self, retval: Any) -> RunResult:
        """Settle a run whose body returned ``retval``."""
        task, request = self.task, self.request
        # Callbacks go first, as in Celery: if one cannot be sent, the run is a failure and
        # on_success is not called.
        for callback in self.message.link:
            maybe_signature(callback, app=task.app).apply_async(
                (retval,), parent_id=request.id, root_id=request.root_id)
        task.on_success(retval, request.id, self.args, self.kwargs)  # type: ignore[arg-type]
        self._each("succeeded", retval)
        if logger.isEnabledFor(logging.INFO):  # Celery's line, without its cost when off
            logger.info("task %s[%s] succeeded in %.3fs: %s", task.name, request.id,
                        self.runtime, _short(retval))
        return RunResult(Outcome.SUCCESS, retval)

    def failed(self, exc: BaseException) -> RunResult:
        """Settle a run whose body (or success handling) raised ``exc``."""
        exc = self._autoretry(exc)
        task, request = self.task, self.request
        outcome = classify(exc, task)
        einfo = ExceptionInfo(exc)
        if outcome is Outcome.RETRY:
            assert isinstance(exc, Retry)
            task.on_retry(exc.exc, request.id, self.args, self.kwargs, einfo)  # type: ignore[arg-type]
            self._each("retried", exc, einfo)
            logger.info("task %s[%s] retry: %s", task.name, request.id, exc)
            return RunResult(outcome, exc, einfo.traceback, exc.retry_message)
        if isinstance(exc, TaskPredicate):
            logger.info("task %s[%s] %s: %r", task.name, request.id, outcome.value, exc)
            return RunResult(outcome, exc, None)
        task.on_failure(exc, request.id, self.args, self.kwargs, einfo)  # type: ignore[arg-type]
        self._each("failed", exc, einfo)
        self._call_errbacks(exc, einfo)
        if task.throws and isinstance(exc, task.throws):
            # Expected errors (Celery's ``throws``): logged briefly, without a traceback.
            logger.info("task %s[%s] raised expected %r", task.name, request.id, exc)
        else:
            logger.error("task %s[%s] raised %r", task.name, request.id, exc,
                         exc_info=(type(exc), exc, exc.__traceback__))
        return RunResult(outcome, exc, einfo.traceback)

    def unstored(self, exc: ResultStoreError) -> RunResult:
        """Settle a run whose outcome the result store could not record: 503, delivered
        again (the body may run again; its outcome is not lost)."""
        logger.warning("task %s[%s]: %s; answering 503 so it is delivered again",
                       self.task.name, self.request.id, exc)
        return RunResult(Outcome.REQUEUE, exc)

    def finish(self, result: RunResult) -> None:
        """Run the after-hooks and pop the request."""
        try:
            einfo = None if result.outcome is Outcome.SUCCESS else ExceptionInfo(result.retval)
            self.task.after_return(result.state, result.retval, self.message.id, self.args,
                                   self.kwargs, einfo)
            for after in self.step("after_run"):
                after(self, result)
        finally:
            pop_request(self._token)

    def _autoretry(self, exc: BaseException) -> BaseException:
        task = self.task
        if (not task.autoretry_for or isinstance(exc, TaskPredicate)
                or not isinstance(exc, task.autoretry_for)
                or (task.dont_autoretry_for and isinstance(exc, task.dont_autoretry_for))):
            return exc
        retry_kwargs = dict(task.retry_kwargs)
        if self.request._override_max_retries is not None:  # self.retry(max_retries=) ran
            retry_kwargs["max_retries"] = self.request._override_max_retries
        if task.retry_backoff:
            retry_kwargs["countdown"] = get_exponential_backoff_interval(
                factor=int(max(1.0, float(task.retry_backoff))), retries=self.request.retries,
                maximum=task.retry_backoff_max, full_jitter=task.retry_jitter)
        try:
            task.retry(exc=exc, **retry_kwargs)
        except BaseException as outcome:
            return outcome
        return exc  # pragma: no cover - retry(throw=True) always raises

    def _call_errbacks(self, exc: BaseException, einfo: ExceptionInfo) -> None:
        request = self.request
        for errback in self.message.link_error:
            sig = maybe_signature(errback, app=self.task.app)
            target = self.task.app.tasks.get(sig.task)
            if target is not None and _takes_request(target):
                # New-style errbacks get (request, exc, traceback), called here as in Celery.
                try:
                    sig(request, exc, einfo.traceback)
                except Exception:
                    logger.exception("errback %s raised", sig.task)
            else:
                sig.apply_async((request.id,), parent_id=request.id,
                                root_id=request.root_id or request.id)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}..."


def _takes_request(task: Task[..., Any]) -> bool:
    """Whether an errback is new-style, by Celery's rule (``arity_greater(fun, 1)``): more
    than one positional parameter, or ``*args``."""
    positional = 0
    for parameter in task.arguments.signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional > 1


def _awaited(run: TaskRun) -> Generator[Any, Any, None]:
    while run.awaiting:
        yield run.awaiting.pop(0)


def _steps(run: TaskRun) -> Generator[Any, Any, RunResult]:
    """The I/O-free core of a run: yields the body's coroutine, if it returned one, and the
    layers' awaitables, for the caller to complete (and send back the value, or throw the
    error in)."""
    result: RunResult | None = None
    try:
        try:
            try:
                run.start()
                yield from _awaited(run)
                retval = run.call()
                if asyncio.iscoroutine(retval):
                    retval = yield retval
                result = run.succeeded(retval)
                yield from _awaited(run)
            except ResultStoreError:
                raise
            except BaseException as exc:
                result = run.failed(exc)
                yield from _awaited(run)
        except ResultStoreError as exc:
            run.awaiting.clear()
            result = run.unstored(exc)
    finally:
        if result is not None:
            run.finish(result)
        elif run._token is not None:  # pragma: no cover - a hook failed before an outcome
            pop_request(run._token)
    return result


def _advance(steps: Generator[Any, Any, RunResult], value: Any, error: BaseException | None,
             ) -> tuple[Any, RunResult | None]:
    """The next awaitable of a run, or its result when it is over."""
    try:
        return (steps.throw(error) if error is not None else steps.send(value)), None
    except StopIteration as done:
        return None, done.value


def run_sync(run: TaskRun) -> RunResult:
    """Run a sync task to its outcome (an ``async def`` body on a loop of its own)."""
    steps, settled = _steps(run), _NOTHING
    while (step := _advance(steps, *settled))[1] is None:
        try:
            settled = _run_coroutine(step[0]), None
        except BaseException as exc:
            settled = None, exc
    return step[1]


async def run_async(run: TaskRun) -> RunResult:
    """Run an async task to its outcome on the running event loop."""
    run.asynchronous = True
    steps, settled = _steps(run), _NOTHING
    while (step := _advance(steps, *settled))[1] is None:
        try:
            settled = await step[0], None
        except BaseException as exc:
            settled = None, exc
    return step[1]


# What is sent into a run's steps first: no value, no error.
_NOTHING: tuple[Any, BaseException | None] = (None, None)


def _run_coroutine(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, in or out of an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}
    context = contextvars.copy_context()  # keeps self.request visible in the new thread

    def target() -> None:
        try:
            box["value"] = context.run(asyncio.run, coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="celery-gcp-eager")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
