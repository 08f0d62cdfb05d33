"""Test apps, as Celery's ``celery.contrib.testing.app``: :func:`TestApp` and
:func:`setup_default_app`, which puts the current app back as it was afterwards.

Example::

    app = TestApp(config={"task_always_eager": True})
    with setup_default_app(app):
        ...
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

from ... import _state
from ...app import Celery
from . import tasks  # noqa: F401 - celery.ping for every app, as Celery's TestApp has it

__all__ = ["DEFAULT_TEST_CONFIG", "TestApp", "Trap", "set_trap", "setup_default_app"]

#: The settings of a test app (Celery's, for what exists here): messages are recorded
#: (``memory://``) and results kept in this process, where a test's worker writes them.
DEFAULT_TEST_CONFIG: dict[str, Any] = {
    "enable_utc": True,
    "timezone": "UTC",
    "broker_url": "memory://",
    "result_backend": "cache+memory://",
}


class Trap:
    """Stands in for the current app and raises on any use (``use_celery_app_trap``): code
    under test that falls back to ``current_app`` instead of taking an app fails loudly."""

    def __getattr__(self, name: str) -> NoReturn:
        if name in ("_is_coroutine", "__func__"):  # looked at by unittest.mock
            raise AttributeError(name)
        raise RuntimeError(f"Test depends on current_app (it read {name!r})")


def TestApp(name: str | None = None, config: Mapping[str, Any] | None = None,
            enable_logging: bool = False, set_as_current: bool = False,
            backend: str | None = None, broker: str | None = None, **kwargs: Any) -> Celery:
    """An app for tests: :data:`DEFAULT_TEST_CONFIG` overridden by ``config``; ``broker`` /
    ``backend`` replace the default ``broker_url`` / ``result_backend``. ``enable_logging``
    is accepted as Celery's is: celery_gcp sets up no logging either way."""
    settings = dict(copy.deepcopy(DEFAULT_TEST_CONFIG), **(config or {}))
    if broker is not None:
        settings.pop("broker_url", None)
    if backend is not None:
        settings.pop("result_backend", None)
    kwargs.pop("log", None)  # Celery's logging class: no such machinery here
    return Celery(name or "celery.tests", broker=broker, backend=backend,
                  set_as_current=set_as_current, **{**settings, **kwargs})


@contextmanager
def set_trap(app: Celery) -> Iterator[None]:
    """Make the current app a :class:`Trap` until the block ends."""
    previous = _state._current
    _state._current = Trap()  # type: ignore[assignment]
    try:
        yield
    finally:
        _state._current = previous


@contextmanager
def setup_default_app(app: Celery, use_trap: bool = False) -> Iterator[None]:
    """Run the block with ``app`` available (the current app a :class:`Trap` if
    ``use_trap``); afterwards the current and default apps, the shared-task callbacks and the
    known apps are as before, and ``app`` is closed."""
    current, default = _state._current, _state._default
    finalizers, apps = list(_state._on_finalize), weakref.WeakSet(_state._apps)
    try:
        if use_trap:
            with set_trap(app):
                yield
        else:
            yield
    finally:
        _state._current, _state._default = current, default
        _state._on_finalize[:] = finalizers
        _state._apps = apps
        if app is not current:
            app.close()
