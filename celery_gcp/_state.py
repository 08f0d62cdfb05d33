"""The current app and the shared tasks every app gets (Celery's ``celery._state``)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .utils.proxy import Proxy

if TYPE_CHECKING:
    from .app import Celery
    from .task import Task

__all__ = [
    "connect_on_app_finalize",
    "current_app",
    "current_task",
    "get_current_app",
    "get_current_task",
    "set_current_app",
]

_lock = threading.Lock()
_current: Celery | None = None
_default: Celery | None = None
_apps: weakref.WeakSet[Celery] = weakref.WeakSet()
_on_finalize: list[Callable[[Celery], Any]] = []


def set_current_app(app: Celery) -> None:
    """Make ``app`` the current app."""
    global _current
    _current = app


def register_app(app: Celery) -> None:
    """Remember ``app`` so shared tasks declared later are added to it too."""
    _apps.add(app)


def get_current_app() -> Celery:
    """The app created last with ``set_as_current=True``; a default app if none exists."""
    global _default
    if _current is not None:
        return _current
    with _lock:
        if _default is None:
            from .app import Celery

            _default = Celery("default", set_as_current=False)
        return _default


def connect_on_app_finalize(callback: Callable[[Celery], Any]) -> Callable[[Celery], Any]:
    """Run ``callback(app)`` for every app that exists and every app created later."""
    _on_finalize.append(callback)
    for app in list(_apps):
        callback(app)
    return callback


def apply_finalizers(app: Celery) -> None:
    """Run the shared-task callbacks for a new app."""
    for callback in list(_on_finalize):
        callback(app)


def get_current_task() -> Task[Any, Any] | None:
    """The task being run in this thread or asyncio task (innermost), or ``None``."""
    from .context import top_request

    top = top_request()
    return cast("Task[Any, Any]", top[0]) if top is not None else None


# Proxies, as Celery's: ``isinstance(current_app, Celery)`` is True and a module doing
# ``celery = current_app`` holds an app that ``-A`` finds; the target is looked up on each use.
current_app: Any = Proxy(get_current_app)
current_task: Any = Proxy(get_current_task)
