"""Celery's Django fixup: what an app does for a Django project.

When ``DJANGO_SETTINGS_MODULE`` is set as the app is created and Django is installed:

- ``app.Task`` is :class:`~celery_gcp.contrib.django.task.DjangoTask` (``delay_on_commit``),
  unless the app was given its own ``task_cls``;
- ``django.setup()`` runs when the app is finalized (the worker, ``celery-gcp -A``, or the
  first read of ``app.tasks``), before ``imports``, ``include`` and ``autodiscover_tasks()``
  import task modules, so models can be imported at the top of ``tasks.py``;
- the database connections of the thread that runs a task are closed around each worker run
  with Django's ``close_old_connections()`` (which keeps one younger than ``CONN_MAX_AGE``
  and drops one that is broken), before the body and after it. Eager runs are left alone, as
  in Celery: they share the caller's connection (and its transaction, in a ``TestCase``).

A sync task runs in a worker thread, and the connections closed are that thread's. An async
task reaches the ORM through ``sync_to_async``, whose calls run on asgiref's one shared thread:
the connections closed are that thread's, through ``sync_to_async`` too (as Django's own ASGI
handler does around a request). An async run that ends in ``Ignore`` or ``Reject`` is not
followed by a close; the next run's opening close catches the connection.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ...exceptions import CeleryGcpWarning
from ...layers import Layer

if TYPE_CHECKING:
    from ...app import Celery
    from ...einfo import ExceptionInfo
    from ...exceptions import Retry
    from ...task import Task
    from ...worker.run import RunResult, TaskRun

__all__ = ["SETTINGS_VARIABLE", "DatabaseConnections", "DjangoFixup", "fixup", "no_apps_reason"]

#: The environment variable that turns the fixup on, as in Celery.
SETTINGS_VARIABLE = "DJANGO_SETTINGS_MODULE"


def fixup(app: Celery) -> DjangoFixup | None:
    """The fixup for ``app`` if ``DJANGO_SETTINGS_MODULE`` is set and Django is installed
    (with a warning when it is set and Django is not, as Celery warns); else ``None``."""
    if not os.environ.get(SETTINGS_VARIABLE):
        return None
    try:
        import django  # noqa: F401 - only whether it is installed
    except ImportError:
        warnings.warn(f"{SETTINGS_VARIABLE} is set but Django is not installed: the Django "
                      "fixup (django.setup(), delay_on_commit, closing database connections "
                      "around tasks) is off; pip install django, or unset the variable",
                      CeleryGcpWarning, stacklevel=3)
        return None
    return DjangoFixup(app)


class DjangoFixup:
    """What ``app`` does for Django: its default task class, ``django.setup()`` at finalize
    and the :class:`DatabaseConnections` layer (added to ``app.layers`` here)."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        app.layers.add(DatabaseConnections())

    @property
    def task_cls(self) -> type[Task[Any, Any]]:
        """The default task class: :class:`~celery_gcp.contrib.django.task.DjangoTask`."""
        from .task import DjangoTask

        return DjangoTask

    def setup(self) -> None:
        """``django.setup()``: settings read, app registry populated (again: a no-op)."""
        import django

        django.setup()


def _close_old_connections() -> None:
    from django.db import close_old_connections

    close_old_connections()


def _aclose_old_connections() -> Awaitable[None]:
    from asgiref.sync import sync_to_async

    return sync_to_async(_close_old_connections)()


class DatabaseConnections(Layer):
    """Closes the running thread's stale Django database connections before and after each
    worker run (``close_old_connections()``); eager runs are left alone."""

    def before_run(self, run: TaskRun) -> Awaitable[None] | None:
        """Before the body (``task_prerun`` receivers have run)."""
        if run.request.is_eager:
            return None
        if run.asynchronous:
            return _aclose_old_connections()
        _close_old_connections()
        return None

    def _after_async(self, run: TaskRun) -> Awaitable[None] | None:
        # after_run cannot be awaited, so an async run closes at its outcome step instead.
        if run.asynchronous and not run.request.is_eager:
            return _aclose_old_connections()
        return None

    def succeeded(self, run: TaskRun, retval: Any) -> Awaitable[None] | None:
        """After an async body that returned."""
        return self._after_async(run)

    def retried(self, run: TaskRun, retry: Retry,
                einfo: ExceptionInfo) -> Awaitable[None] | None:
        """After an async body that retried."""
        return self._after_async(run)

    def failed(self, run: TaskRun, exc: BaseException,
               einfo: ExceptionInfo) -> Awaitable[None] | None:
        """After an async body that failed."""
        return self._after_async(run)

    def after_run(self, run: TaskRun, result: RunResult) -> None:
        """After a sync run, whatever its outcome, in its thread."""
        if not run.asynchronous and not run.request.is_eager:
            _close_old_connections()


def no_apps_reason() -> str:
    """Why Django gives ``autodiscover_tasks()`` no packages: not installed, not set up, or
    ``INSTALLED_APPS`` empty (the fix for each is in the text)."""
    try:
        from django.apps import apps
        from django.conf import settings
    except ImportError:
        return ("Django is not installed; pass the packages to search: "
                "app.autodiscover_tasks(['pkg', ...])")
    if not settings.configured:
        return (f"Django is not set up: set {SETTINGS_VARIABLE} before the app is created "
                "(as Celery's Django guide does in proj/celery.py), and celery_gcp calls "
                "django.setup() before it imports task modules")
    if not apps.ready:
        return ("Django's apps are not loaded yet: call django.setup() first, or set "
                f"{SETTINGS_VARIABLE} before the app is created")
    return "INSTALLED_APPS is empty in the Django settings: list the apps that hold tasks.py"
