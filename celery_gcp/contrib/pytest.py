"""Celery's pytest plugin for celery_gcp: the fixtures of ``celery.contrib.pytest``.

Not loaded by itself (as in Celery 5): enable it in a ``conftest.py`` with
``pytest_plugins = ("celery_gcp.contrib.pytest",)``, or with ``-p celery_gcp.contrib.pytest``.

- ``celery_app``: a test app (:func:`celery_gcp.contrib.testing.app.TestApp`): messages are
  recorded (``memory://``), results kept in this process; configured by ``celery_config``,
  ``celery_parameters`` and the ``celery`` marker (``@pytest.mark.celery(result_backend=...)``).
- ``celery_worker``: the app served over real HTTP behind the embedded Cloud Tasks emulator
  (:func:`celery_gcp.contrib.testing.worker.start_worker`): ``.delay()`` runs the task and
  ``.get()`` returns its result. ``celery_worker.drain()`` waits until every task sent has run.
- ``celery_session_app`` / ``celery_session_worker``: the same, for the whole session.
- ``celery_includes``, ``celery_class_tasks``, ``celery_worker_pool``,
  ``celery_worker_parameters``, ``celery_enable_logging``, ``use_celery_app_trap``,
  ``depends_on_current_app``: as in Celery.
- Our own: ``celery_emulator_clock`` (a :class:`~celery_gcp.emulator.ManualClock`) and
  ``celery_emulator`` (an emulator on that clock; a test that asks for it gets a
  ``celery_worker`` behind it, whose ``drain()`` moves the clock past countdowns and retry
  backoffs), and ``celery_drain`` (the worker's ``drain``).

Example::

    @pytest.fixture(scope="session")
    def celery_config():
        return {"task_default_queue": "tests"}

    def test_add(celery_app, celery_worker):
        @celery_app.task
        def mul(x, y):
            return x * y

        celery_worker.reload()      # accepted, as in Celery's docs; tasks are served anyway
        assert mul.delay(4, 4).get(timeout=10) == 16
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..app import Celery
    from ..emulator import Emulator, ManualClock
    from .testing.worker import TestWorker

__all__ = [
    "celery_app",
    "celery_class_tasks",
    "celery_config",
    "celery_drain",
    "celery_emulator",
    "celery_emulator_clock",
    "celery_enable_logging",
    "celery_includes",
    "celery_parameters",
    "celery_session_app",
    "celery_session_worker",
    "celery_worker",
    "celery_worker_parameters",
    "celery_worker_pool",
    "depends_on_current_app",
    "pytest_configure",
    "use_celery_app_trap",
]

#: As in Celery: with ``NO_WORKER`` set, the worker fixtures start no worker (and yield None).
NO_WORKER = os.environ.get("NO_WORKER")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``celery`` marker."""
    config.addinivalue_line(
        "markers", "celery(**overrides): override celery configuration for a test case")


@contextmanager
def _create_app(enable_logging: bool = False, use_trap: bool = False,
                parameters: Mapping[str, Any] | None = None,
                **config: Any) -> Iterator[Celery]:
    from .testing.app import TestApp, setup_default_app

    app = TestApp(set_as_current=False, enable_logging=enable_logging, config=config,
                  **dict(parameters or {}))
    with setup_default_app(app, use_trap=use_trap):
        yield app


def _config(request: pytest.FixtureRequest, celery_config: Mapping[str, Any]) -> dict[str, Any]:
    mark = request.node.get_closest_marker("celery")
    return dict(celery_config, **(mark.kwargs if mark else {}))


@pytest.fixture(scope="session")
def use_celery_app_trap() -> bool:
    """Override to return True: code that uses the current app instead of the one it was
    given raises."""
    return False


@pytest.fixture(scope="session")
def celery_enable_logging() -> bool:
    """Accepted as in Celery; celery_gcp sets up no logging either way."""
    return False


@pytest.fixture(scope="session")
def celery_includes() -> Sequence[str]:
    """Override with module names to import before the worker starts (task modules)."""
    return ()


@pytest.fixture(scope="session")
def celery_class_tasks() -> Sequence[Any]:
    """Override with class-based tasks to register with the session app."""
    return []


@pytest.fixture(scope="session")
def celery_worker_pool() -> str:
    """Accepted as in Celery (``"solo"``); the worker is an HTTP server either way."""
    return "solo"


@pytest.fixture(scope="session")
def celery_config() -> Mapping[str, Any]:
    """Override to configure the test app (settings by their Celery names)."""
    return {}


@pytest.fixture(scope="session")
def celery_parameters() -> Mapping[str, Any]:
    """Override to pass arguments to the test app's constructor (``Celery(...)``)."""
    return {}


@pytest.fixture(scope="session")
def celery_worker_parameters() -> Mapping[str, Any]:
    """Override to pass options to :func:`~celery_gcp.contrib.testing.worker.start_worker`
    (``perform_ping_check``, ``shutdown_timeout``, ...)."""
    return {}


@pytest.fixture(scope="session")
def celery_session_app(request: pytest.FixtureRequest, celery_config: Mapping[str, Any],
                       celery_parameters: Mapping[str, Any], celery_enable_logging: bool,
                       use_celery_app_trap: bool) -> Iterator[Celery]:
    """A test app for the whole session, made the current app (unless trapped)."""
    with _create_app(enable_logging=celery_enable_logging, use_trap=use_celery_app_trap,
                     parameters=celery_parameters, **_config(request, celery_config)) as app:
        if not use_celery_app_trap:
            app.set_current()
        yield app


@pytest.fixture(scope="session")
def celery_session_worker(celery_session_app: Celery, celery_includes: Sequence[str],
                          celery_class_tasks: Sequence[Any], celery_worker_pool: str,
                          celery_worker_parameters: Mapping[str, Any],
                          ) -> Iterator[TestWorker | None]:
    """A worker serving the session app for the whole session."""
    from .testing.worker import start_worker

    if NO_WORKER:
        yield None
        return
    _import(celery_includes)
    for class_task in celery_class_tasks:
        celery_session_app.register_task(class_task)
    with start_worker(celery_session_app, pool=celery_worker_pool,
                      **celery_worker_parameters) as worker:
        yield worker


@pytest.fixture
def celery_app(request: pytest.FixtureRequest, celery_config: Mapping[str, Any],
               celery_parameters: Mapping[str, Any], celery_enable_logging: bool,
               use_celery_app_trap: bool) -> Iterator[Celery]:
    """A test app for one test: ``celery_config`` with the ``celery`` marker's overrides."""
    with _create_app(enable_logging=celery_enable_logging, use_trap=use_celery_app_trap,
                     parameters=celery_parameters, **_config(request, celery_config)) as app:
        yield app


@pytest.fixture
def celery_emulator_clock() -> ManualClock:
    """A manual clock (now, standing still until advanced) for :func:`celery_emulator`."""
    from ..emulator import ManualClock

    return ManualClock()


@pytest.fixture
def celery_emulator(celery_emulator_clock: ManualClock) -> Iterator[Emulator]:
    """An embedded Cloud Tasks + Cloud Scheduler emulator on ``celery_emulator_clock``."""
    from ..emulator import Emulator

    with Emulator(clock=celery_emulator_clock) as emulator:
        yield emulator


@pytest.fixture
def celery_worker(request: pytest.FixtureRequest, celery_app: Celery,
                  celery_includes: Sequence[str], celery_worker_pool: str,
                  celery_worker_parameters: Mapping[str, Any]) -> Iterator[TestWorker | None]:
    """``celery_app`` served over HTTP behind an emulator for one test (the test's
    ``celery_emulator`` if it asks for one, else one on the real clock)."""
    from .testing.worker import start_worker

    if NO_WORKER:
        yield None
        return
    _import(celery_includes)
    emulator = (request.getfixturevalue("celery_emulator")
                if "celery_emulator" in request.fixturenames else None)
    with start_worker(celery_app, pool=celery_worker_pool, emulator=emulator,
                      **celery_worker_parameters) as worker:
        yield worker


@pytest.fixture
def celery_drain(celery_worker: TestWorker | None) -> Callable[..., None]:
    """``celery_drain()``: wait until every task the test sent has run (see
    :meth:`~celery_gcp.contrib.testing.worker.TestWorker.drain`)."""
    if celery_worker is None:
        raise RuntimeError("celery_drain needs a worker, and NO_WORKER is set")
    return celery_worker.drain


@pytest.fixture
def depends_on_current_app(celery_app: Celery) -> None:
    """Make ``celery_app`` the current app for the test."""
    celery_app.set_current()


def _import(modules: Sequence[str]) -> None:
    for module in modules:
        importlib.import_module(module)
