"""``@shared_task``: a task that every app gets, for reusable apps and libraries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, cast, overload

from . import _state
from .utils.proxy import Proxy

if TYPE_CHECKING:
    from .app import Celery
    from .task import Task

__all__ = ["shared_task"]

P = ParamSpec("P")
R = TypeVar("R")


class _SharedTask(Proxy):
    """Stands for the shared task in the current app, as Celery's proxy: reads, writes
    (``mock.patch.object(task, "retry", ...)``), deletes and calls go to that task, and
    ``isinstance(task, app.Task)`` is True."""

    __slots__ = ("_fun", "_name")

    def __init__(self, fun: Callable[..., Any], name: str | None) -> None:
        super().__init__(self._task)
        object.__setattr__(self, "_fun", fun)
        object.__setattr__(self, "_name", name)

    def _task(self) -> Task[Any, Any]:
        app = _state.get_current_app()
        name = self._name or app.gen_task_name(self._fun.__name__, self._fun.__module__)
        return app.tasks[name]

    def __repr__(self) -> str:
        return f"<shared task {self._name or self._fun.__qualname__}>"


@overload
def shared_task(fun: Callable[P, R], /) -> Task[P, R]: ...
@overload
def shared_task(*, bind: Literal[True], **options: Any
                ) -> Callable[[Callable[Concatenate[Any, P], R]], Task[P, R]]: ...
@overload
def shared_task(*, bind: Literal[False] = False, **options: Any
                ) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def shared_task(*args: Any, **options: Any) -> Any:
    """Declare a task for every app, existing and future: ``@shared_task`` or with options.

    The returned object resolves to the task in the current app when used.
    """

    def create(fun: Callable[..., Any]) -> Task[Any, Any]:
        def register(app: Celery) -> None:
            app._task_from_fun(fun, **dict(options))

        _state.connect_on_app_finalize(register)
        return cast("Task[Any, Any]", _SharedTask(fun, options.get("name")))

    if len(args) == 1 and callable(args[0]) and not options:
        return create(args[0])
    if args:
        raise TypeError("argument 1 to @shared_task() must be a callable")
    return create
