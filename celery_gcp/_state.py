"""The current app and the shared tasks every app gets (Celery's ``celery._state``)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["connect_on_app_finalize", "get_current_app", "set_current_app"]

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


class _CurrentApp:
    """``celery_gcp.current_app``: attribute access goes to the current app."""

    def __getattr__(self, name: str) -> Any:
        return getattr(get_current_app(), name)

    def __repr__(self) -> str:
        return repr(get_current_app())


current_app: Any = _CurrentApp()
