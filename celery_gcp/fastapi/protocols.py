"""Static types for endpoints made by the route builders.

A route decorator returns the endpoint function unchanged, so a type checker does not know it
gained ``.delay()``; these casts say so, keeping the endpoint's own signature::

    @router.post("/welcome/{user_id}")
    def _welcome(user_id: int, lang: str = "en") -> None: ...

    welcome = as_delayed_task(_welcome)
    welcome.delay(user_id=7)         # checked: welcome.delay(user_id="7") is a type error
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, cast

from typing_extensions import Unpack

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..canvas import Signature
    from ..result import AsyncResult
    from ..transport import Receipt
    from .delayed import AsyncDelayOptions, DelayOptions
    from .scheduled import AsyncSchedulerOptions, SchedulerOptions

__all__ = [
    "AsyncDelayedTask",
    "AsyncScheduledTask",
    "DelayedTask",
    "ScheduledTask",
    "TaskRouteEndpoint",
    "as_async_delayed_task",
    "as_async_scheduled_task",
    "as_delayed_task",
    "as_route_task",
    "as_scheduled_task",
]

P = ParamSpec("P")
R = TypeVar("R", covariant=True)
T = TypeVar("T")  # invariant: AsyncResult[T] is


class _Sends(Protocol[P]):
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Receipt: ...


class _AsyncSends(Protocol[P]):
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[Receipt]: ...


class DelayedTask(Protocol[P, R]):
    """An endpoint of a ``DelayedRouteBuilder`` route."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Receipt: ...
    def options(self, **options: Unpack[DelayOptions]) -> _Sends[P]: ...


class AsyncDelayedTask(Protocol[P, R]):
    """An endpoint of an ``AsyncDelayedRouteBuilder`` route."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[Receipt]: ...
    def options(self, **options: Unpack[AsyncDelayOptions]) -> _AsyncSends[P]: ...


class _Job(Protocol[P]):
    job_id: str

    def schedule(self, *args: P.args, **kwargs: P.kwargs) -> Any: ...
    def delete(self) -> bool | Exception: ...


class _AsyncJob(Protocol[P]):
    job_id: str

    def schedule(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[Any]: ...
    def delete(self) -> Awaitable[bool | Exception]: ...


class ScheduledTask(Protocol[P, R]):
    """An endpoint of a ``ScheduledRouteBuilder`` route."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    def scheduler(self, *, name: str, schedule: str,
                  **options: Unpack[SchedulerOptions]) -> _Job[P]: ...


class AsyncScheduledTask(Protocol[P, R]):
    """An endpoint of an ``AsyncScheduledRouteBuilder`` route."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    def scheduler(self, *, name: str, schedule: str,
                  **options: Unpack[AsyncSchedulerOptions]) -> _AsyncJob[P]: ...


class TaskRouteEndpoint(Protocol[P, T]):
    """An endpoint of an ``app.TaskRoute`` route: the Celery calling API. (Parameters of the
    route's dependencies are not in its signature: pass those through ``apply_async``.)"""

    name: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T: ...
    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[T]: ...
    def adelay(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[AsyncResult[T]]: ...
    def apply_async(self, args: Sequence[Any] | None = None,
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> AsyncResult[T]: ...
    def aapply_async(self, args: Sequence[Any] | None = None,
                     kwargs: Mapping[str, Any] | None = None,
                     **options: Any) -> Awaitable[AsyncResult[T]]: ...
    def s(self, *args: Any, **kwargs: Any) -> Signature: ...


def as_route_task(fn: Callable[P, T]) -> TaskRouteEndpoint[P, T]:
    """``fn``, typed as an ``app.TaskRoute`` endpoint (``.delay()`` checked against it)."""
    return cast("TaskRouteEndpoint[P, T]", fn)


def as_delayed_task(fn: Callable[P, R]) -> DelayedTask[P, R]:
    """``fn``, typed as an endpoint with ``.delay()`` / ``.options()``."""
    return cast("DelayedTask[P, R]", fn)


def as_async_delayed_task(fn: Callable[P, R]) -> AsyncDelayedTask[P, R]:
    """``fn``, typed as an endpoint with an awaitable ``.delay()``."""
    return cast("AsyncDelayedTask[P, R]", fn)


def as_scheduled_task(fn: Callable[P, R]) -> ScheduledTask[P, R]:
    """``fn``, typed as an endpoint with ``.scheduler()``."""
    return cast("ScheduledTask[P, R]", fn)


def as_async_scheduled_task(fn: Callable[P, R]) -> AsyncScheduledTask[P, R]:
    """``fn``, typed as an endpoint with an awaitable ``.scheduler().schedule()``."""
    return cast("AsyncScheduledTask[P, R]", fn)
