"""The result layer: records each run's states in the app's result store, as Celery does.

It is one :class:`~celery_gcp.layers.Layer` of every app (after the signal layer) and wants
no step while ``app.backend`` is ``None``, so an app without a store runs as before. With a
store it records, for task endpoints, ``TaskRoute`` routes and eager runs alike (eager ones
with ``task_store_eager_result``):

=========  =================================================================================
STARTED    before the body, with ``track_started`` / ``task_track_started``
REVOKED    a delivery skipped past its ``expires`` (``AsyncResult.revoke()`` stores its own)
RETRY      the run ended in a retry (the exception and its traceback)
SUCCESS    the return value, unless results are ignored (``ignore_result``)
FAILURE    the exception and its traceback (kept with ``ignore_result`` only when
           ``task_store_errors_even_if_ignored``); also as the state of the chain steps
           after it, which will never run (as Celery's backends store them)
=========  =================================================================================

A run's record lists the tasks it sent (``children``, as Celery's ``trail``), and a
per-call ``ignore_result=`` (``apply_async(ignore_result=True)``) overrides the task's.

Each record expires after ``result_expires`` (one day by default; a ``timedelta`` or
seconds; ``None`` keeps it). A write that fails raises
:class:`~celery_gcp.exceptions.ResultStoreError`, which the run answers with 503 so Cloud
Tasks delivers the task again. On the async path (:attr:`TaskRun.asynchronous`) the writes
are awaitables the run awaits, so store I/O never blocks the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .. import states
from ..exceptions import ResultStoreError, TaskRevokedError
from ..layers import Layer
from ..message import IGNORE_RESULT
from . import chords
from .chords import CHORD_HEADER
from .codec import decode_result, encode_exception, encode_result

if TYPE_CHECKING:
    from ..app import Celery
    from ..context import Context
    from ..einfo import ExceptionInfo
    from ..exceptions import Retry
    from ..message import Message
    from ..task import Task
    from ..transport import Receipt
    from ..worker.run import TaskRun
    from .store import ResultStore

__all__ = ["ResultLayer", "astore_state", "expires_of", "ignores_result", "make_meta",
           "state_meta", "store_state"]


def expires_of(app: Celery) -> float | None:
    """``result_expires`` in seconds (``None``: records do not expire)."""
    value = app.conf.get("result_expires")
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def make_meta(app: Celery, task_id: str, state: str, result: Any, traceback: str | None = None,
              request: Context | None = None, children: list[Any] | None = None,
              runtime: float | None = None) -> dict[str, Any]:
    """A meta in Celery's layout (with the request's fields under ``result_extended``).

    ``runtime`` (seconds) is what Flower shows from Celery's events; with no events here, a
    finished worker run keeps it in its record instead (Celery's readers ignore the key).
    """
    meta: dict[str, Any] = {
        "status": state, "result": result, "traceback": traceback,
        "children": children or [],
        "date_done": app.now().isoformat() if state in states.READY_STATES else None,
        "task_id": task_id,
    }
    if runtime is not None:
        meta["runtime"] = round(runtime, 6)
    if request is not None and app.conf.get("result_extended"):
        info = request.delivery_info or {}
        meta.update(name=request.task, args=encode_result(list(request.args or ())),
                    kwargs=encode_result(dict(request.kwargs or {})),
                    worker=request.hostname, retries=request.retries,
                    queue=info.get("routing_key"))
    return meta


def state_meta(app: Celery, task_id: str, state: str, meta: Any,
               request: Context | None = None) -> dict[str, Any]:
    """The record of a custom state (``update_state``): ``meta`` is the result as Celery
    stores it (an exception is encoded as one)."""
    value = encode_exception(meta) if isinstance(meta, BaseException) else encode_result(meta)
    return make_meta(app, task_id, state, value, request=request)


def store_state(app: Celery, store: ResultStore, task_id: str, state: str, meta: Any,
                request: Context | None = None) -> None:
    """Record a custom state (``update_state``), blocking until it is stored."""
    _write(store, state_meta(app, task_id, state, meta, request), expires_of(app))


async def astore_state(app: Celery, store: ResultStore, task_id: str, state: str, meta: Any,
                       request: Context | None = None) -> None:
    """Async :func:`store_state` (``aupdate_state``): the event loop is not blocked."""
    await _awrite(store, state_meta(app, task_id, state, meta, request), expires_of(app))


def _write(store: ResultStore, meta: Mapping[str, Any], expires: float | None) -> None:
    try:
        store.set_meta(meta["task_id"], meta, expires)
    except Exception as exc:
        raise _unstored(store, meta, exc) from exc


async def _awrite(store: ResultStore, meta: Mapping[str, Any], expires: float | None) -> None:
    try:
        await store.aset_meta(meta["task_id"], meta, expires)
    except Exception as exc:
        raise _unstored(store, meta, exc) from exc


def _unstored(store: ResultStore, meta: Mapping[str, Any], exc: Exception) -> ResultStoreError:
    return ResultStoreError(
        f"the {meta['status']} state of task {meta['task_id']} could not be stored in the "
        f"result store {store.url or type(store).__name__}: {exc!r}")


def ignores_result(task: Task[..., Any], message: Message) -> bool:
    """Whether the result of ``task`` run for ``message`` is not kept: the call's
    ``ignore_result=``, else the task's, else ``task_ignore_result`` (as Celery's)."""
    per_call = message.headers.get(IGNORE_RESULT) if message.headers else None
    if per_call is not None:
        return per_call is True
    ignore = task.ignore_result
    return bool(task.app.conf.task_ignore_result if ignore is None else ignore)


def _ignores_result(run: TaskRun) -> bool:
    return run.request.ignore_result  # ignores_result(), worked out once for the run


def _children(run: TaskRun) -> list[Any]:
    """The tasks ``run`` sent, in Celery's layout (``AsyncResult.as_tuple()``)."""
    return [[[child, None], None] for child in run.request.children or ()]


#: What runs after a record is written: a function and its arguments (in a worker thread for
#: an async run, as they do blocking store I/O).
_FollowUp = tuple[Callable[..., None], tuple[Any, ...]]


class ResultLayer(Layer):
    """Records the states of ``app``'s runs in ``app.backend`` (see the module docstring)."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def wants(self, step: str) -> bool:
        """The run steps it overrides, and only while the app has a store."""
        return super().wants(step) and self.app.backend is not None

    def _store(self, run: TaskRun) -> ResultStore | None:
        """The store to record ``run`` in, or ``None`` (an eager run, unless
        ``task_store_eager_result``)."""
        store = self.app.backend
        if store is None or (run.request.is_eager
                             and not self.app.conf.get("task_store_eager_result")):
            return None
        return store

    def _stores_errors(self, run: TaskRun) -> bool:
        return (not _ignores_result(run)
                or bool(run.task.store_errors_even_if_ignored
                        or self.app.conf.get("task_store_errors_even_if_ignored")))

    def _record(self, run: TaskRun, store: ResultStore, meta: dict[str, Any],
                after: Sequence[_FollowUp] = ()) -> Awaitable[None] | None:
        """Write ``meta``, then count a chord member done and run ``after``: inline for a
        sync run, awaitable (the follow-ups in a worker thread) for an async one."""
        expires = expires_of(self.app)
        follow_ups = [*self._chord_follow_ups(run, store, meta), *after]
        if run.asynchronous:
            return self._arecord(store, meta, expires, follow_ups)
        _write(store, meta, expires)
        for function, args in follow_ups:
            function(*args)
        return None

    async def _arecord(self, store: ResultStore, meta: dict[str, Any] | None,
                       expires: float | None, follow_ups: Sequence[_FollowUp]) -> None:
        if meta is not None:
            await _awrite(store, meta, expires)
        if follow_ups:
            import anyio.to_thread

            for function, args in follow_ups:
                await anyio.to_thread.run_sync(function, *args)

    def _chord_follow_ups(self, run: TaskRun, store: ResultStore, meta: dict[str, Any],
                          ) -> list[_FollowUp]:
        """Counting a chord header member done, once its final state is written (if it is
        one)."""
        if (CHORD_HEADER not in run.message.headers
                or meta["status"] not in (states.SUCCESS, states.FAILURE)):
            return []
        return [(_chord_done, (self.app, store, run.message, meta["status"],
                               decode_result(meta)))]

    def before_run(self, run: TaskRun) -> Awaitable[None] | None:
        """STARTED, with ``track_started`` (as Celery: not when results are ignored)."""
        store = self._store(run)
        task = run.task
        if store is None or _ignores_result(run) or not (
                task.track_started or self.app.conf.get("task_track_started")):
            return None
        return self._record(run, store, make_meta(
            self.app, run.message.id, states.STARTED,
            {"pid": os.getpid(), "hostname": run.request.hostname}, request=run.request))

    def succeeded(self, run: TaskRun, retval: Any) -> Awaitable[None] | None:
        """SUCCESS and the return value (FAILURE if the value has no JSON form)."""
        store = self._store(run)
        if store is None or _ignores_result(run):
            return None
        try:
            meta = make_meta(self.app, run.message.id, states.SUCCESS, encode_result(retval),
                             request=run.request, children=_children(run),
                             runtime=run.runtime)
        except TypeError as exc:  # stored as the failure it is, as Celery does
            meta = make_meta(self.app, run.message.id, states.FAILURE, encode_exception(exc),
                             repr(exc), request=run.request, children=_children(run),
                             runtime=run.runtime)
        return self._record(run, store, meta)

    def retried(self, run: TaskRun, retry: Retry,
                einfo: ExceptionInfo) -> Awaitable[None] | None:
        """RETRY, with the exception that caused it."""
        store = self._store(run)
        if store is None or not self._stores_errors(run):
            return None
        reason = retry.exc if isinstance(retry.exc, BaseException) else retry
        return self._record(run, store, make_meta(
            self.app, run.message.id, states.RETRY, encode_exception(reason),
            einfo.traceback, request=run.request, children=_children(run)))

    def failed(self, run: TaskRun, exc: BaseException,
               einfo: ExceptionInfo) -> Awaitable[None] | None:
        """FAILURE, with the exception and its traceback."""
        store = self._store(run)
        if store is None or not self._stores_errors(run):
            return None
        encoded = encode_exception(exc)
        following = list(_chain_steps(run.message.link))
        after: list[_FollowUp] = []
        if following:  # the chain's later steps never run: they fail too
            after.append((_fail_chain_steps, (self.app, store, run.message, following, encoded,
                                              einfo.traceback)))
        return self._record(run, store, make_meta(
            self.app, run.message.id, states.FAILURE, encoded, einfo.traceback,
            request=run.request, children=_children(run), runtime=run.runtime), after)

    def after_send(self, message: Message, receipt: Receipt) -> None:
        """Trail: a task sent by a worker run is one of that run's ``children`` (as in
        Celery, not for eager runs, nor for a task's own retry or replacement)."""
        from ..context import top_request

        top = top_request()
        if top is None:
            return
        task, request = top
        if (request.called_directly or request.is_eager or request.id == receipt.task_id
                or not getattr(task, "trail", True)):
            return
        if request.children is None:
            request.children = []
        if receipt.task_id not in request.children:
            request.children.append(receipt.task_id)

    def skipped(self, task: Task[..., Any], message: Message,
                reason: str) -> Awaitable[None] | None:
        """REVOKED for a delivery past its ``expires``; a chord header member skipped
        (expired or revoked) fails its chord, as in Celery."""
        store = self.app.backend
        if store is None:
            return None
        meta = None
        if reason == "expired":
            meta = make_meta(self.app, message.id, states.REVOKED,
                             encode_exception(TaskRevokedError(reason)))
        follow_ups: list[_FollowUp] = (
            [(_chord_done, (self.app, store, message, states.REVOKED, None))]
            if CHORD_HEADER in message.headers else [])
        if meta is None and not follow_ups:
            return None
        return self._arecord(store, meta, expires_of(self.app), follow_ups)


def _chain_steps(links: Any) -> Iterator[Mapping[str, Any]]:
    """The chain steps after a run, in order: its ``link`` callbacks that have their own
    task id (chain() chooses every step's id up front; a plain ``link=`` callback has none,
    nor has a group), and theirs in turn."""
    for link in links or ():
        if not isinstance(link, Mapping) or link.get("subtask_type"):
            continue
        options = link.get("options") or {}
        if not options.get("task_id"):
            continue
        yield link
        yield from _chain_steps(options.get("link"))


def _fail_chain_steps(app: Celery, store: ResultStore, message: Message,
                      steps: list[Mapping[str, Any]], encoded: Any,
                      traceback: str | None) -> None:
    """Store a failed run's exception as the FAILURE of the chain steps that will now never
    run, as Celery's backends do: otherwise the chain's result (its last step) stays
    PENDING and ``get()`` waits forever. A step that is a chord header member (a chain in a
    header is counted at its last step) is counted done, so the chord fails instead of
    stalling."""
    from types import SimpleNamespace

    expires = expires_of(app)
    for step in steps:
        options = step["options"]
        task_id = str(options["task_id"])
        _write(store, make_meta(app, task_id, states.FAILURE, encoded, traceback), expires)
        headers = options.get("headers") or {}
        if CHORD_HEADER in headers:
            member = SimpleNamespace(id=task_id, task=step.get("task"), headers=headers,
                                     root_id=message.root_id or message.id)
            _chord_done(app, store, member, states.FAILURE, None)


def _chord_done(app: Celery, store: ResultStore, message: Any, state: str, result: Any) -> None:
    """Count a chord header member done; a failure to do so is redelivered like a failed
    write (the count is idempotent)."""
    try:
        chords.part_done(app, store, message, state, result)
    except Exception as exc:
        raise ResultStoreError(
            f"chord member {message.id} was stored as {state} but could not be counted done: "
            f"{exc!r}") from exc
