"""``self.request``: what a running task knows about its own call, as Celery's ``Context``.

Besides Celery's fields, a task run by Cloud Tasks sees the platform's delivery headers in
``self.request.cloudtasks`` (queue, task name, the platform's retry and execution counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "CloudTasksDelivery",
    "Context",
    "current_request",
    "drop_request",
    "pop_request",
    "push_request",
    "request_of",
    "top_request",
]


@dataclass(frozen=True, slots=True)
class CloudTasksDelivery:
    """The ``X-CloudTasks-*`` headers of the request that delivered the task."""

    queue_name: str | None
    task_name: str | None
    retry_count: int
    execution_count: int
    eta: datetime | None
    previous_response: str | None
    retry_reason: str | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> CloudTasksDelivery | None:
        """Read the platform headers; ``None`` when the request did not come from Cloud Tasks."""
        queue = headers.get("x-cloudtasks-queuename")
        if queue is None:
            return None
        eta = headers.get("x-cloudtasks-tasketa")
        return cls(
            queue_name=queue,
            task_name=headers.get("x-cloudtasks-taskname"),
            retry_count=_int(headers.get("x-cloudtasks-taskretrycount")),
            execution_count=_int(headers.get("x-cloudtasks-taskexecutioncount")),
            eta=_epoch(eta),
            previous_response=headers.get("x-cloudtasks-taskpreviousresponse"),
            retry_reason=headers.get("x-cloudtasks-taskretryreason"),
        )


def _int(raw: str | None) -> int:
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    return int(raw) if raw is not None and raw.isascii() and raw.isdigit() else 0


def _epoch(raw: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(raw), UTC) if raw else None
    except (ValueError, OverflowError, OSError):  # out of datetime's range
        return None


class Context:
    """The request of one task run.

    Fields as in Celery: ``id, task, args, kwargs, retries, is_eager, called_directly, eta,
    expires, headers, root_id, parent_id, delivery_info, callbacks, errbacks, hostname,
    ignore_result, group, group_index, chord, children``; plus ``cloudtasks``
    (:class:`CloudTasksDelivery` or ``None``). ``group`` and ``group_index`` are set in a
    worker's run of a group or chord header member, and ``chord`` (the body's signature) in
    a chord header member's, as in Celery. ``children`` lists the
    ids of the tasks the run sent (with a result store, as Celery's ``trail``), stored with
    its result for ``AsyncResult.children``.
    """

    id: str | None = None
    task: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    retries: int = 0
    is_eager: bool = False
    called_directly: bool = True
    eta: datetime | None = None
    expires: datetime | None = None
    headers: dict[str, Any] | None = None
    root_id: str | None = None
    parent_id: str | None = None
    delivery_info: dict[str, Any] | None = None
    callbacks: list[dict[str, Any]] | None = None
    errbacks: list[dict[str, Any]] | None = None
    hostname: str | None = None
    ignore_result: bool = False
    group: str | None = None
    group_index: int | None = None
    chord: Any = None
    chain: Any = None
    correlation_id: str | None = None
    reply_to: str | None = None
    origin: str | None = None
    timelimit: tuple[float | None, float | None] | None = None
    cloudtasks: CloudTasksDelivery | None = None
    children: list[str] | None = None
    # Set by the executor once the task's __call__ has been entered for this run.
    _entered: bool = False
    # A retry(max_retries=...) of this run: the limit autoretry applies for the rest of it.
    _override_max_retries: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.update(*args, **kwargs)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Set fields from a mapping and/or keywords."""
        self.__dict__.update(*args, **kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        """A field, or ``default``."""
        return getattr(self, key, default)

    def clear(self) -> None:
        """Reset every field to its default."""
        self.__dict__.clear()

    def __repr__(self) -> str:
        return f"<Context: {vars(self)!r}>"


# The requests of the task runs in progress in this context (thread or asyncio task), innermost
# last. A ContextVar keeps concurrent runs apart in both threads and coroutines.
_Stack = tuple[tuple[object, Context], ...]
_stack: ContextVar[_Stack] = ContextVar("celery_gcp_requests", default=())


def push_request(task: object, request: Context) -> Token[_Stack]:
    """Make ``request`` the current request of ``task``; undo with :func:`pop_request`."""
    return _stack.set((*_stack.get(), (task, request)))


def pop_request(token: Token[_Stack]) -> None:
    """Undo a :func:`push_request`."""
    _stack.reset(token)


def drop_request(task: object) -> Context | None:
    """Remove the innermost request of ``task`` from this context's stack; returns it (``None``
    when ``task`` has none)."""
    stack = _stack.get()
    for index in range(len(stack) - 1, -1, -1):
        if stack[index][0] is task:
            _stack.set(stack[:index] + stack[index + 1:])
            return stack[index][1]
    return None


def request_of(task: object) -> Context | None:
    """The innermost request of ``task`` in this context, if it is running."""
    for owner, request in reversed(_stack.get()):
        if owner is task:
            return request
    return None


def top_request() -> tuple[object, Context] | None:
    """The innermost ``(task, request)`` pair, if any task is running."""
    stack = _stack.get()
    return stack[-1] if stack else None


def current_request() -> Context | None:
    """The request of the innermost task run by a worker or eagerly (not called directly)."""
    for _owner, request in reversed(_stack.get()):
        if not request.called_directly:
            return request
    return None
