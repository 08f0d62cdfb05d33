"""The Task class: calling (``delay``, ``apply_async``, ``apply``), ``retry`` and ``self.request``.

What the body does to its own run (``retry``, ``replace``, ``add_to_chord``, ``update_state``)
is in task_control.py, the signatures (``s``, ``si``, ``map``...) in task_signatures.py, the
handlers a base class overrides (``on_failure``...) in task_handlers.py.

Each ``@app.task`` function becomes a subclass of the app's task class with ``run`` set to the
function, instantiated once, as in Celery. Options Celery does not know become class attributes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic, ParamSpec, TypeVar

from .arguments import Arguments
from .context import (
    Context,
    drop_request,
    pop_request,
    push_request,
    request_of,
    top_request,
)
from .exceptions import MaxRetriesExceededError
from .result import AsyncResult, EagerResult
from .sending import send_options
from .task_control import RunControl
from .task_handlers import TaskHandlers
from .task_signatures import TaskSignatures

if TYPE_CHECKING:
    from .app import Celery
    from .message import HttpTarget, Message
    from .transport import Receipt

__all__ = ["Task"]

# Task attributes that act as defaults for every call (Celery's execution options).
_EXEC_OPTIONS = ("queue", "expires", "priority", "routing_key", "exchange", "delivery_mode")
P = ParamSpec("P")
R = TypeVar("R")


class Task(RunControl, TaskSignatures, TaskHandlers, Generic[P, R]):
    """A task: the unit of work that Cloud Tasks calls over HTTP.

    Subclass it (``base=`` / ``task_cls=``) to share hooks or a ``__call__`` wrapper::

        class DatabaseTask(Task):
            def on_failure(self, exc, task_id, args, kwargs, einfo):
                alert(task_id, exc)

        @app.task(base=DatabaseTask, bind=True, max_retries=5)
        def sync_user(self, user_id: int) -> None: ...
    """

    app: ClassVar[Celery]
    name: ClassVar[str]
    typing: ClassVar[bool | None] = None  # None: the app's strict_typing (True by default)
    max_retries: ClassVar[int | None] = 3
    default_retry_delay: ClassVar[float] = 180
    rate_limit: ClassVar[str | int | float | None] = None
    ignore_result: ClassVar[bool | None] = None
    time_limit: ClassVar[float | None] = None
    soft_time_limit: ClassVar[float | None] = None
    acks_late: ClassVar[bool | None] = None
    acks_on_failure_or_timeout: ClassVar[bool | None] = None
    autoretry_for: ClassVar[tuple[type[BaseException], ...]] = ()
    dont_autoretry_for: ClassVar[tuple[type[BaseException], ...]] = ()
    throws: ClassVar[tuple[type[BaseException], ...]] = ()
    retry_kwargs: ClassVar[dict[str, Any]] = {}
    retry_backoff: ClassVar[bool | int | float] = False
    retry_backoff_max: ClassVar[int] = 600
    retry_jitter: ClassVar[bool] = True
    serializer: ClassVar[str] = "json"
    queue: ClassVar[str | None] = None
    trail: ClassVar[bool] = True
    track_started: ClassVar[bool] = False
    store_errors_even_if_ignored: ClassVar[bool] = False
    abstract: ClassVar[bool] = True
    MaxRetriesExceededError: ClassVar[type[MaxRetriesExceededError]] = MaxRetriesExceededError

    # -- running ---------------------------------------------------------------------------

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The task body; ``@app.task`` sets it to the decorated function."""
        raise NotImplementedError("tasks must define the run method")

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task body in this process, as a plain function call."""
        top = top_request()
        if top is not None and top[0] is self and not top[1]._entered:
            # A worker or eager run pushed this request; this call is its body.
            top[1]._entered = True
            return self.run(*args, **kwargs)  # type: ignore[no-any-return]
        request = Context(args=args, kwargs=kwargs, task=self.name)
        if self.is_async:
            return self._call_async(request, args, kwargs)  # type: ignore[return-value]
        token = push_request(self, request)
        try:
            return self.run(*args, **kwargs)  # type: ignore[no-any-return]
        finally:
            pop_request(token)

    async def _call_async(self, request: Context, args: Any, kwargs: Any) -> Any:
        token = push_request(self, request)
        try:
            return await self.run(*args, **kwargs)
        finally:
            pop_request(token)

    @property
    def request(self) -> Context:
        """The request of the current run (a called-directly request outside a run)."""
        return request_of(self) or Context(task=getattr(self, "name", None))

    def push_request(self, *args: Any, **kwargs: Any) -> None:
        """Make a new request this task's current one until :meth:`pop_request`, as Celery's
        request stack (in tests: ``task.push_request(id="x", retries=2, called_directly=False)``).

        It starts as a copy of the current request, updated by the arguments. Each thread and
        asyncio task has a stack of its own.
        """
        inherited = {k: v for k, v in vars(self.request).items() if not k.startswith("_")}
        request = Context(*args, **{**inherited, **kwargs})
        request._entered = True  # not a run's request awaiting its body: calls push their own
        push_request(self, request)

    def pop_request(self) -> None:
        """Remove the request :meth:`push_request` made current (nothing if there is none)."""
        drop_request(self)

    @cached_property
    def is_async(self) -> bool:
        """Whether the task body is an ``async def`` function."""
        return inspect.iscoroutinefunction(self.run)

    @cached_property
    def arguments(self) -> Arguments:
        """The argument schema shared by the call site and the worker."""
        typed = self.app.strict_typing if self.typing is None else self.typing
        return Arguments(self.run, self.name, typed=typed)

    def encode_call(self, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> tuple[bytes, HttpTarget | None]:
        """The body of a call and where it goes (``None``: this task's endpoint); raises
        :class:`~celery_gcp.exceptions.TaskArgumentError` for arguments the task does not take.
        """
        return self.arguments.encode(args, kwargs), None

    # -- calling ---------------------------------------------------------------------------

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the task with these arguments: ``add.delay(2, 3)``."""
        return self.apply_async(args, kwargs)

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Async :meth:`delay`: ``await add.adelay(2, 3)`` never blocks the event loop."""
        return await self.aapply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        task_id: str | None = None,
        link: Any = None,
        link_error: Any = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """Send the task, with Celery's options (``countdown``, ``eta``, ``expires``, ``queue``...).

        With ``task_always_eager`` the task runs here and an :class:`EagerResult` comes back.
        """
        sender = self.app.sender
        if sender.eager():
            return self.apply(args, kwargs, task_id=task_id, link=link, link_error=link_error,
                              **options)
        message = self._message(args, kwargs, task_id, link, link_error, options)
        receipt = sender.send(message, send_options(options) if options else None)
        return self._sent(receipt, options)

    async def aapply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        task_id: str | None = None,
        link: Any = None,
        link_error: Any = None,
        **options: Any,
    ) -> AsyncResult[R]:
        """Async :meth:`apply_async`."""
        sender = self.app.sender
        if sender.eager():
            return await self.aapply(args, kwargs, task_id=task_id, link=link,
                                     link_error=link_error, **options)
        message = self._message(args, kwargs, task_id, link, link_error, options)
        receipt = await sender.asend(message, send_options(options) if options else None)
        return self._sent(receipt, options)

    def _sent(self, receipt: Receipt, options: Mapping[str, Any]) -> AsyncResult[R]:
        result: AsyncResult[R] = AsyncResult(receipt.task_id, task_name=self.name,
                                             app=self.app, location=receipt.name)
        # Celery's handle knows the result is ignored, so get() does not wait for nothing.
        per_call = options.get("ignore_result")
        result.ignored = self.ignore_result if per_call is None else bool(per_call)
        return result

    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        link: Any = None,
        link_error: Any = None,
        task_id: str | None = None,
        retries: int | None = None,
        throw: bool | None = None,
        headers: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> EagerResult[R]:
        """Run the task here, through the same JSON round trip a worker uses.

        Failures end in an :class:`EagerResult` in state ``FAILURE`` (re-raised by ``.get()``),
        or propagate when ``throw=True`` or ``task_eager_propagates`` is set.
        """
        from .worker.eager import run_eagerly

        message = self._message(args, kwargs, task_id, link, link_error,
                                {**options, "retries": retries, "headers": headers}, route=False)
        return run_eagerly(self, message, propagate=self._propagates(throw))

    async def aapply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        link: Any = None,
        link_error: Any = None,
        task_id: str | None = None,
        retries: int | None = None,
        throw: bool | None = None,
        headers: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> EagerResult[R]:
        """Async :meth:`apply`: an ``async def`` task runs on this event loop."""
        from .worker.eager import arun_eagerly

        message = self._message(args, kwargs, task_id, link, link_error,
                                {**options, "retries": retries, "headers": headers}, route=False)
        return await arun_eagerly(self, message, propagate=self._propagates(throw))

    def _propagates(self, throw: bool | None) -> bool:
        return bool(self.app.conf.task_eager_propagates) if throw is None else throw

    def _message(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                 task_id: str | None, link: Any, link_error: Any, options: Mapping[str, Any],
                 route: bool = True) -> Message:
        options = {k: v for k, v in options.items() if v is not None} if options else {}
        if task_id is not None:
            options["task_id"] = task_id
        if link is not None:
            options["link"] = link
        if link_error is not None:
            options["link_error"] = link_error
        for key in _EXEC_OPTIONS:  # task attributes are per-call defaults, as in Celery
            value = getattr(self, key, None)
            if value is not None and key not in options:
                options[key] = value
        return self.app.sender.message(self.name, self, args, kwargs, options, route=route)

    def AsyncResult(self, task_id: str, **kwargs: Any) -> AsyncResult[R]:
        """The result handle for ``task_id``."""
        return AsyncResult(task_id, task_name=self.name, app=self.app, **kwargs)

    def __repr__(self) -> str:
        return f"<@task: {getattr(self, 'name', '?')}>"
