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
    from ..transport import Receipt
    from .delayed import DelayOptions
    from .scheduled import SchedulerOptions

__all__ = [
    "AsyncDelayedTask",
    "AsyncScheduledTask",
    "DelayedTask",
    "ScheduledTask",
    "as_async_delayed_task",
    "as_async_scheduled_task",
    "as_delayed_task",
    "as_scheduled_task",
]

P = ParamSpec("P")
R = TypeVar("R", covariant=True)


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
    def options(self, **options: Unpack[DelayOptions]) -> _AsyncSends[P]: ...


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
                  **options: Unpack[SchedulerOptions]) -> _AsyncJob[P]: ...


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
