"""The task registry, and how a decorated function becomes a task of an app."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .exceptions import CeleryGcpWarning, ImproperlyConfigured, InvalidTaskError, NotRegistered
from .platform import DEADLINE_RANGE
from .task import Task

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["TaskRegistry", "check_task_name", "make_task"]

# A task name is the last segment of its endpoint's path.
_TASK_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}\Z")


class TaskRegistry(dict[str, Task[Any, Any]]):
    """Tasks by name; a missing name raises :class:`NotRegistered`.

    ``app.tasks.register(MyTask)`` registers a class-based task with the app that owns the
    registry, as ``app.register_task`` does.
    """

    def __init__(self, app: Celery | None = None) -> None:
        super().__init__()
        self.app = app

    def __missing__(self, key: str) -> Task[Any, Any]:
        raise NotRegistered(key)

    def register(self, task: Task[Any, Any] | type[Task[Any, Any]]) -> Task[Any, Any]:
        """Register a task, an instance or a class to instantiate; returns the instance.

        As in Celery the class must set ``name``, else :class:`InvalidTaskError` is raised
        (``app.register_task`` names it after its module instead).
        """
        if not getattr(task, "name", None):
            cls = task if isinstance(task, type) else type(task)
            raise InvalidTaskError(
                f"task class {cls.__name__!r} has no name: set name = '...' on the class, or "
                f"register it with app.register_task({cls.__name__}), which names it "
                f"{cls.__module__}.{cls.__name__}"
            )
        if self.app is not None:
            return self.app.register_task(task)
        instance = task() if isinstance(task, type) else task
        self[instance.name] = instance
        return instance

    def unregister(self, name: str) -> None:
        """Remove a task; raises :class:`NotRegistered` if it is not there."""
        try:
            del self[name]
        except KeyError:
            raise NotRegistered(name) from None


def check_task_name(name: str) -> None:
    """Raise :class:`ImproperlyConfigured` for a name that cannot be an endpoint's path."""
    if not _TASK_NAME.match(name):
        raise ImproperlyConfigured(
            f"task name {name!r} cannot be an endpoint path segment: use 1 to 200 characters "
            "of letters, digits and . _ : - (pass name= to the task decorator)"
        )


def make_task(app: Celery, fun: Callable[..., Any], name: str, base: type[Task[Any, Any]],
              bind: bool, options: Mapping[str, Any]) -> Task[Any, Any]:
    """The task ``@app.task(**options)`` makes of ``fun``: a subclass of ``base`` with ``run``
    set to ``fun``, instantiated once, as in Celery (not registered yet)."""
    check_task_name(name)
    options = dict(options)
    for key in ("autoretry_for", "dont_autoretry_for", "throws"):
        if key in options:
            options[key] = tuple(options[key])
    limit = options.get("time_limit")
    if limit is not None and not DEADLINE_RANGE[0] <= float(limit) <= DEADLINE_RANGE[1]:
        raise ImproperlyConfigured(
            f"task {name!r}: time_limit={limit} is outside what Cloud Tasks allows for a "
            "request's dispatch deadline (15 s to 30 min); split longer work into tasks"
        )
    if options.get("soft_time_limit") is not None:
        warnings.warn(
            f"task {name!r}: soft_time_limit is accepted but never raised: Cloud Tasks "
            "cancels a request only at its dispatch deadline (time_limit)",
            CeleryGcpWarning, stacklevel=4,
        )
    attrs = {
        "app": app, "name": name, "run": fun if bind else staticmethod(fun),
        "_decorated": True, "__doc__": fun.__doc__, "__module__": fun.__module__,
        "__wrapped__": fun, "abstract": False, **options,
    }
    if attrs.get("typing", base.typing) is None:
        attrs["typing"] = app.strict_typing
    task: Task[Any, Any] = type(fun.__name__, (base,), attrs)()
    return task
