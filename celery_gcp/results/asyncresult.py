"""``AsyncResult`` (re-exported by :mod:`celery_gcp.result`; ``EagerResult`` is in
:mod:`.eager`).

With a result store (``app.backend``) an :class:`AsyncResult` reads the task's meta from it,
as Celery's does from its result backend: ``state``, ``result``, ``get()``... Without one it
behaves as before there were stores: its state is what Cloud Tasks can tell (``PENDING``,
``RETRY``) and :meth:`AsyncResult.get` raises :class:`NoResultBackendError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .. import states
from ..exceptions import NoResultBackendError, TaskRevokedError, TimeoutError
from .codec import decode_result, outcome
from .extended import ExtendedFields
from .joining import assert_will_not_block
from .lineage import Lineage, parent_handles, reraise_parents

if TYPE_CHECKING:
    from ..app import Celery
    from .store import Meta, ResultStore

__all__ = ["AsyncResult", "ResultBase", "assert_will_not_block", "result_from_tuple"]

R = TypeVar("R")

_NO_STORE = (
    "the result of task {id} cannot be fetched: the app has no result store. Set "
    "result_backend (redis://..., db+postgresql://..., db+sqlite:///path; see the migration "
    "guide), have the task save what callers need keyed by its id, chain a follow-up task "
    "with link=, or use task_always_eager=True in tests to get EagerResult values."
)
class ResultBase:
    """Base class for results."""

    parent: Any = None


class AsyncResult(ResultBase, ExtendedFields, Lineage, Generic[R]):
    """The handle of a task that was sent.

    Example::

        result = add.delay(2, 3)
        result.id       # the task id, also the Cloud Tasks task name
        result.get(timeout=10)   # 5, with a result store
    """

    #: Celery's names: the error ``get()`` raises on timeout, and no native join here.
    TimeoutError = TimeoutError
    supports_native_join = False

    def __init__(self, id: str, backend: Any = None, task_name: str | None = None,
                 app: Celery | None = None, parent: Any = None,
                 location: str | None = None) -> None:
        self.id = id
        self.task_id = id
        self._name = task_name
        self.app = app
        self.parent = parent
        #: Where the transport put the task (the Cloud Tasks task name), when known.
        self.location = location
        self._backend = backend
        self._cache: Meta | None = None  # a ready meta does not change: read once
        self._on_ready: list[Callable[[AsyncResult[R]], Any]] = []
        # None: sent by a task whose ignore_result follows task_ignore_result, read when asked
        # (the send path does not read the app's settings).
        self._ignored: bool | None = False

    @property
    def ignored(self) -> bool:
        """Whether the task was sent with its result ignored (``ignore_result``, the task's
        or ``task_ignore_result``): then ``get()`` returns ``None`` without waiting, as in
        Celery. Settable; ``False`` for a handle made from an id."""
        if self._ignored is None:
            self._ignored = bool(self.app is not None and self.app.conf.task_ignore_result)
        return self._ignored

    @ignored.setter
    def ignored(self, value: bool | None) -> None:
        self._ignored = value

    @property
    def backend(self) -> ResultStore | None:
        """The result store read (``backend=``, else the app's; ``None``: no store)."""
        if self._backend is not None:
            return self._backend  # type: ignore[no-any-return]
        return (self.app or _current_app()).backend

    def _meta(self) -> Meta | None:
        if self._cache is not None:
            return self._cache
        store = self.backend
        return None if store is None else self._seen(store.get_meta(self.id))

    def _seen(self, meta: Meta | None) -> Meta | None:
        if meta is not None and meta.get("status") in states.READY_STATES:
            self._cache = meta
            callbacks, self._on_ready = self._on_ready, []
            for callback in callbacks:
                callback(self)
        return meta

    @property
    def state(self) -> str:
        """The stored state; with no record, what the platform can tell: ``PENDING`` (not
        tried yet) or ``RETRY`` (attempts failed so far) while Cloud Tasks holds the task,
        ``PENDING`` otherwise, as Celery reports an id it has no record of."""
        meta = self._meta()
        if meta is not None:
            return str(meta["status"])
        if self.app is not None and self.location:
            return self.app.transport.task_state(self.location) or states.PENDING
        return states.PENDING

    status = state

    @property
    def result(self) -> Any:
        """The return value, the exception of a failed task, the ``meta`` of a custom state
        (``None`` while pending)."""
        meta = self._meta()
        if meta is None:
            return None
        return decode_result(meta)

    info = result

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of a failed (or retried) task."""
        meta = self._meta()
        return None if meta is None else meta.get("traceback")

    @property
    def date_done(self) -> datetime | None:
        """When the task finished (UTC), or ``None``."""
        meta = self._meta()
        done = None if meta is None else meta.get("date_done")
        return datetime.fromisoformat(done) if done else None

    @property
    def children(self) -> list[Any]:
        """The results of the tasks this one sent while it ran (recorded with its result,
        as Celery's ``trail``): :class:`AsyncResult` objects, or a :class:`GroupResult`
        for a group recorded as one."""
        meta = self._meta()
        raws = [] if meta is None else meta.get("children") or []
        return [result_from_tuple(raw, self.app) for raw in raws]

    def ready(self) -> bool:
        """Whether the task finished (SUCCESS, FAILURE or REVOKED)."""
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        """Whether the task succeeded."""
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        """Whether the task failed."""
        return self.state == states.FAILURE

    def _store_for_get(self, disable_sync_subtasks: bool) -> ResultStore:
        store = self.backend
        if store is None:
            raise NoResultBackendError(_NO_STORE.format(id=self.id))
        if disable_sync_subtasks:
            assert_will_not_block()
        return store

    def get(self, timeout: float | None = None, propagate: bool = True,
            interval: float = 0.5, no_ack: bool = True, follow_parents: bool = True,
            callback: Callable[[str, Any], Any] | None = None,
            on_message: Callable[[Meta], Any] | None = None,
            on_interval: Callable[[], Any] | None = None,
            disable_sync_subtasks: bool = True) -> R:
        """Wait until the task is ready and return its result, polling the store every
        ``interval`` seconds; a failure is re-raised (``propagate=False``: returned), and,
        as in Celery, so is a failure of a :attr:`parent` (root first; a chord's header
        member before the body's ``ChordError``) unless ``follow_parents=False``.
        :class:`TimeoutError` after ``timeout`` seconds; ``RuntimeError`` inside a task.
        ``None`` at once if the task was sent with its result ignored (:attr:`ignored`).

        As Celery's: ``on_message(meta)`` gets each new record (a state such as ``PROGRESS``
        from ``update_state``, then the final one), here as seen at a poll; ``on_interval()``
        is called at each poll that finds the task not ready; ``callback(task_id, value)``
        once it is. ``no_ack`` has no meaning here."""
        if self.ignored:
            return None  # type: ignore[return-value]
        store = self._store_for_get(disable_sync_subtasks)
        parents = parent_handles(self) if propagate and follow_parents else []
        watch = _Watch(self, propagate, interval, timeout, time.monotonic(),
                       callback, on_message, on_interval)
        while True:
            unread = [p.id for p in parents if p._cache is None]
            reraise_parents(parents, dict(zip(unread, store.get_metas(unread) if unread
                                                else [], strict=True)))
            raw = None if self._cache else store.get_meta(self.id)
            done, value = watch.poll(raw, time.monotonic())
            if done:
                return value  # type: ignore[no-any-return]
            time.sleep(value)

    wait = get

    async def aget(self, timeout: float | None = None, propagate: bool = True,
                   interval: float = 0.5, no_ack: bool = True, follow_parents: bool = True,
                   callback: Callable[[str, Any], Any] | None = None,
                   on_message: Callable[[Meta], Any] | None = None,
                   on_interval: Callable[[], Any] | None = None,
                   disable_sync_subtasks: bool = True) -> R:
        """:meth:`get` for async callers: the store is read without blocking the loop."""
        if self.ignored:
            return None  # type: ignore[return-value]
        store = self._store_for_get(disable_sync_subtasks)
        parents = parent_handles(self) if propagate and follow_parents else []
        loop = asyncio.get_running_loop()
        watch = _Watch(self, propagate, interval, timeout, loop.time(),
                       callback, on_message, on_interval)
        while True:
            unread = [p.id for p in parents if p._cache is None]
            reraise_parents(parents, dict(zip(unread, await store.aget_metas(unread)
                                                if unread else [], strict=True)))
            raw = None if self._cache else await store.aget_meta(self.id)
            done, value = watch.poll(raw, loop.time())
            if done:
                return value  # type: ignore[no-any-return]
            await asyncio.sleep(value)

    def collect(self, intermediate: bool = False, **kwargs: Any,
                ) -> Iterator[tuple[AsyncResult[Any], Any]]:
        """``(result, value)`` for this task and, depth first, the tasks it sent."""
        yield self, self.get(**kwargs)
        for child in self.children:
            yield from child.collect(intermediate=intermediate, **kwargs)

    def then(self, callback: Callable[[AsyncResult[R]], Any],
             on_error: Any = None, weak: bool = False) -> None:
        """Call ``callback(result)`` once, when this result is seen ready (by ``get()``,
        ``ready()``, ``state``...: nothing watches the store in the background)."""
        if self._cache is not None:
            callback(self)
        else:
            self._on_ready.append(callback)

    def forget(self) -> None:
        """Delete the stored result (nothing to do without a store)."""
        self._cache = None
        store = self.backend
        if store is not None:
            store.forget(self.id)

    def revoke(self, connection: Any = None, terminate: bool = False, signal: Any = None,
               wait: bool = False, timeout: float | None = None) -> bool:
        """Delete the task if it has not run yet; returns whether it was deleted. With a
        store, a task not finished yet is recorded as REVOKED.

        A running task cannot be stopped (``terminate=True`` raises): Cloud Tasks has no
        way to interrupt a request in flight.
        """
        if terminate:
            raise NotImplementedError("terminate=True: Cloud Tasks cannot stop a running task")
        deleted = bool(self.app is not None and self.location
                       and self.app.transport.revoke(self.location))
        store = self.backend
        if store is not None and not self.ready():
            from .layer import store_state

            store_state(self.app or _current_app(), store, self.id, states.REVOKED,
                        TaskRevokedError("revoked"))
            self._cache = None
        return deleted

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return other.id == self.id
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.id}>"


class _Watch:
    """One wait of :meth:`AsyncResult.get` / ``aget``, without I/O: :meth:`poll` takes each
    read and says whether the wait is over, calling Celery's ``on_message``,
    ``on_interval`` and ``callback`` hooks as it goes."""

    def __init__(self, result: AsyncResult[Any], propagate: bool, interval: float,
                 timeout: float | None, now: float, callback: Callable[[str, Any], Any] | None,
                 on_message: Callable[[Meta], Any] | None,
                 on_interval: Callable[[], Any] | None) -> None:
        self.result, self.propagate, self.interval = result, propagate, interval
        self.deadline = None if timeout is None else now + timeout
        self.callback, self.on_message, self.on_interval = callback, on_message, on_interval
        self._last: Meta | None = None

    def poll(self, raw: Meta | None, now: float) -> tuple[bool, Any]:
        """``(True, the outcome)`` once ready (a failure raised if it propagates), else
        ``(False, seconds to wait)``; :class:`TimeoutError` past the deadline."""
        result = self.result
        meta = result._cache if result._cache is not None else result._seen(raw)
        if self.on_message is not None and meta is not None and meta != self._last:
            self._last = meta
            self.on_message(meta)
        if meta is not None and meta.get("status") in states.READY_STATES:
            value = outcome(meta, self.propagate)
            if self.callback is not None:
                self.callback(result.id, value)
            return True, value
        deadline = self.deadline
        if deadline is not None and now >= deadline:
            raise TimeoutError("The operation timed out.")
        if self.on_interval is not None:
            self.on_interval()
        # Poll no later than the deadline (the store offers no wake-up to wait on).
        return False, (self.interval if deadline is None
                       else max(0.0, min(self.interval, deadline - now)))


def _current_app() -> Celery:
    from .._state import get_current_app

    return get_current_app()


def result_from_tuple(raw: Any, app: Celery | None = None) -> Any:
    """The result a tuple form stands for, as Celery's ``result_from_tuple``: an
    ``as_tuple()`` (``((id, parent), None)``, a group's ``((id, parent), [members...])``,
    parents rebuilt too), a list from JSON, or a bare id; a result is returned as it is."""
    if isinstance(raw, ResultBase):
        return raw
    if isinstance(raw, list | tuple) and raw and isinstance(raw[0], list | tuple):
        head, members = raw[0], raw[1] if len(raw) > 1 else None
        task_id, parent = head[0], head[1] if len(head) > 1 else None
        parent_result = result_from_tuple(parent, app) if parent else None
        if isinstance(members, list | tuple):
            from .groups import GroupResult

            return GroupResult(str(task_id), [result_from_tuple(m, app) for m in members],
                               parent=parent_result, app=app)
        return AsyncResult(str(task_id), app=app, parent=parent_result)
    if isinstance(raw, list | tuple) and raw:
        return AsyncResult(str(raw[0]), app=app)
    return AsyncResult(str(raw), app=app)
