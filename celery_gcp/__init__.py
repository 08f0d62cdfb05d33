"""celery_gcp: keep your Celery code, drop the broker.

``from celery_gcp import Celery`` instead of ``from celery import Celery``; tasks become typed
FastAPI endpoints that Google Cloud Tasks (and Cloud Scheduler) call over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._state import current_app, current_task, get_current_app
    from .app import Celery
    from .canvas import (
        Signature,
        chain,
        chord,
        chunks,
        group,
        maybe_signature,
        signature,
        subtask,
        xmap,
        xstarmap,
    )
    from .result import AsyncResult, EagerResult
    from .shared import shared_task
    from .task import Task

__all__ = [
    "AsyncResult",
    "Celery",
    "EagerResult",
    "Signature",
    "Task",
    "chain",
    "chord",
    "chunks",
    "current_app",
    "current_task",
    "get_current_app",
    "group",
    "maybe_signature",
    "shared_task",
    "signature",
    "subtask",
    "uuid",
    "xmap",
    "xstarmap",
]

__version__ = "0.1.0"

# Each name is imported on first use: ``import celery_gcp.emulator`` (or the platform constants)
# must not load the app, and with it FastAPI and pydantic.
_HOMES = {
    "AsyncResult": "result",
    "Celery": "app",
    "EagerResult": "result",
    "Signature": "canvas",
    "Task": "task",
    "chain": "canvas",
    "chord": "canvas",
    "chunks": "canvas",
    "current_app": "_state",
    "current_task": "_state",
    "get_current_app": "_state",
    "group": "canvas",
    "maybe_signature": "canvas",
    "shared_task": "shared",
    "signature": "canvas",
    "subtask": "canvas",
    "xmap": "canvas",
    "xstarmap": "canvas",
}


def uuid(_uuid: Callable[[], Any] | None = None) -> str:
    """A new unique id, as ``celery.uuid()``: a random (version 4) UUID string, the form of a
    default task id (``_uuid``: another UUID factory, such as ``uuid.uuid1``)."""
    if _uuid is not None:
        return str(_uuid())
    from .message import new_id  # the wire format's task ids; no app is loaded

    return new_id()


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:  # a Celery name left out on purpose says so (absent.py)
        from .absent import name_error

        raise name_error(__name__, name)
    # The import statement's own machinery (importlib.import_module bypasses it), so
    # ``-X importtime`` reports these imports as it does every other.
    value = getattr(__import__(home, globals(), fromlist=[name], level=1), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
