"""What a task's body does to its own run: ``self.retry()``, ``self.replace()``,
``self.add_to_chord()`` and ``self.update_state()``.

:class:`RunControl` is a base of :class:`~celery_gcp.task.Task`, which sets the attributes it
declares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from . import states
from .canvas import Signature
from .context import Context
from .exceptions import MaxRetriesExceededError, NoResultBackendError, Reject, Retry
from .sending import warn_once

if TYPE_CHECKING:
    from .app import Celery
    from .arguments import Arguments
    from .message import Message
    from .results.store import ResultStore
    from .task import Task

__all__ = ["RunControl"]


class RunControl:
    """Retrying, replacing, chord membership and custom states of the running task."""

    app: ClassVar[Celery]
    name: ClassVar[str]
    max_retries: ClassVar[int | None]
    default_retry_delay: ClassVar[float]
    MaxRetriesExceededError: ClassVar[type[MaxRetriesExceededError]]

    if TYPE_CHECKING:

        @property
        def request(self) -> Context: ...

        @property
        def arguments(self) -> Arguments: ...

        def _message(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                     task_id: str | None, link: Any, link_error: Any,
                     options: Mapping[str, Any], route: bool = True) -> Message: ...

    # -- retrying --------------------------------------------------------------------------

    def retry(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Retry the current run later, with Celery's semantics.

        A new message with the same id and ``retries + 1`` is sent (at once, in eager mode: it
        runs again immediately). Once ``retries`` would exceed ``max_retries``, ``exc`` is
        raised if given, else :class:`MaxRetriesExceededError`. ``max_retries`` overrides the
        task's limit for the rest of this run (so autoretry of the ``exc`` raised here stops
        too), not for the retries it sends. Raises :class:`Retry` unless ``throw=False``. When
        the task was called directly, ``exc`` (or ``Retry``) is raised.
        """
        request = self.request
        if max_retries is not None:
            # Holds for the rest of this run (autoretry of the error raised here included),
            # never for the retries it sends.
            request._override_max_retries = max_retries
        if request.called_directly:
            if exc is not None:
                raise exc
            raise Retry("Task can be retried", None)
        retries = request.retries + 1
        limit = self.max_retries if max_retries is None else max_retries
        if not eta and countdown is None:
            countdown = self.default_retry_delay
        args, kwargs = self.arguments.merge(request.args, request.kwargs or {}, args, kwargs)
        if limit is not None and retries > limit:
            if exc is not None:
                raise exc
            raise self.MaxRetriesExceededError(
                f"Can't retry {self.name}[{request.id}] args:{args} kwargs:{kwargs}",
                task_args=args, task_kwargs=kwargs,
            )
        delivery = request.delivery_info or {}
        message = self._message(args, kwargs, request.id, request.callbacks, request.errbacks, {
            "countdown": countdown, "eta": eta, "retries": retries, "expires": request.expires,
            "queue": delivery.get("routing_key"), "headers": request.headers,
            "root_id": request.root_id, "parent_id": request.parent_id, **options,
        }, route=not request.is_eager)
        sig = Signature(cast("Task[Any, Any]", self), args, kwargs, {
            "task_id": request.id, "countdown": countdown, "eta": eta, "retries": retries})
        ret = Retry(exc=exc, when=eta or countdown, is_eager=request.is_eager, sig=sig)
        ret.retry_message = message
        if not request.is_eager:
            try:
                self.app.sender.send(message)
            except Exception as send_error:
                # Nothing is lost: 503 has Cloud Tasks deliver this run again.
                raise Reject(send_error, requeue=True) from send_error
        if throw:
            raise ret
        return ret

    def replace(self, sig: Any) -> Any:
        """Hand this run's place to ``sig``, as Celery's ``Task.replace``: it takes over this
        task's id (so ``AsyncResult(id)`` reads its outcome), callbacks, errbacks and chord
        membership; a group becomes a chord gathering its results (a result store needed).

        Sent, it ends this run with :class:`Ignore`; eagerly, it runs here and its result is
        returned. Example::

            @app.task(bind=True)
            def fetch_all(self, urls):
                return self.replace(group(fetch.s(url) for url in urls))
        """
        from .canvas.replacing import replace

        return replace(cast("Task[Any, Any]", self), sig)

    def add_to_chord(self, sig: Any, lazy: bool = False) -> Any:
        """Add ``sig`` (one task's signature) to the chord this running task is a header
        member of, as Celery's: the body waits for it too and gets its result after the
        header's. Sends it (returns its result), or returns it unsent with ``lazy=True``.
        A task that is not a chord member raises ``ValueError``."""
        from .results.chords import add

        store = self.app.backend
        if store is None:
            raise NoResultBackendError(
                "add_to_chord() needs a result store (chords count their members in it): "
                "set result_backend")
        return add(self.app, store, self.request, sig, lazy)

    def on_replace(self, sig: Any) -> Any:
        """Called by :meth:`replace` with the prepared signature: sends it and raises
        :class:`Ignore` (eagerly: runs it and returns its result). Override to change how."""
        from .canvas.replacing import on_replace

        return on_replace(cast("Task[Any, Any]", self), sig)

    # -- states ------------------------------------------------------------------------------

    def update_state(self, task_id: str | None = None, state: str | None = None,
                     meta: Any = None, **kwargs: Any) -> None:
        """Record ``state`` (a custom one, such as ``"PROGRESS"``) with ``meta`` for
        ``task_id`` (by default the running task's): ``AsyncResult(id).state`` / ``.info``
        read it. Without a result store it is dropped, with a one-time warning (Celery
        without a result backend drops it silently). It blocks until the state is stored:
        in an ``async def`` task, ``await self.aupdate_state(...)`` does not block the loop.
        """
        target = self._state_target(task_id)
        if target is not None:
            from .results.layer import store_state

            store_state(self.app, target[0], target[1], state or states.PENDING, meta,
                        target[2])

    async def aupdate_state(self, task_id: str | None = None, state: str | None = None,
                            meta: Any = None, **kwargs: Any) -> None:
        """Async :meth:`update_state`, for ``async def`` tasks: the store is written
        without blocking the event loop.

        Example::

            @app.task(bind=True)
            async def crunch(self, n: int) -> None:
                for i in range(n):
                    await self.aupdate_state(state="PROGRESS", meta={"done": i, "of": n})
        """
        target = self._state_target(task_id)
        if target is not None:
            from .results.layer import astore_state

            await astore_state(self.app, target[0], target[1], state or states.PENDING, meta,
                               target[2])

    def _state_target(self, task_id: str | None,
                      ) -> tuple[ResultStore, str, Context | None] | None:
        """Where ``update_state`` writes: the store, the task id, and the request when it is
        the running task's; ``None`` (warned once) without a store."""
        store = self.app.backend
        if store is None:
            warn_once(self.app, "update_state",
                      "update_state() is dropped: the app has no result store; set "
                      "result_backend (or record progress in your own storage, keyed by "
                      "self.request.id)")
            return None
        request = self.request
        task_id = task_id or request.id
        if task_id is None:
            raise ValueError(f"update_state() outside a run of {self.name!r} needs task_id=")
        return store, task_id, request if request.id == task_id else None
