"""An embedded worker, as Celery's ``celery.contrib.testing.worker.start_worker``: the app's
task endpoints served by uvicorn on 127.0.0.1, behind the embedded Cloud Tasks emulator, so a
test's ``.delay()`` goes to Cloud Tasks (the emulator), which calls the worker over real HTTP
with an OIDC token the worker checks, and ``.get()`` reads what the run stored.

Example::

    app = TestApp()

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app) as worker:
        assert add.delay(2, 3).get(timeout=10) == 5
        send_reminders.delay()
        worker.drain()             # every task sent so far has run (retries and countdowns too)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...platform import CERTS_URL_VARIABLE, SCHEDULER_VARIABLE, TASKS_VARIABLE
from ...transport.cloudtasks import CloudTasksTransport

if TYPE_CHECKING:
    from ...app import Celery
    from ...emulator import Emulator

__all__ = ["TEST_SERVICE_ACCOUNT", "TestWorker", "start_worker"]

#: The identity tasks are signed as when the app names none.
TEST_SERVICE_ACCOUNT = "test-worker@local.iam.gserviceaccount.com"
_VARIABLES = (TASKS_VARIABLE, SCHEDULER_VARIABLE, CERTS_URL_VARIABLE)


class TestWorker:
    """A running embedded worker: its :attr:`app`, :attr:`emulator` and :attr:`url`."""

    __test__ = False  # not a test class, for pytest's collection

    def __init__(self, app: Celery, emulator: Emulator, url: str, served: _Served) -> None:
        self.app = app
        self.emulator = emulator
        #: Where the worker serves the app's task endpoints.
        self.url = url
        self._served = served

    def reload(self) -> None:
        """Serve the tasks registered since the worker started, and create their queues (as
        Celery's docs call it after defining a task in a test; tasks registered later are
        served anyway: the worker notices new ones)."""
        self._served.rebuild()
        _create_queues(self.app)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every task sent so far, and every task those runs sent, has run to its
        end (succeeded, failed, or out of retries). On an emulator with a manual clock, the
        clock is moved to each waiting task's schedule time, so countdowns and retry
        backoffs pass at once; on the real clock they are waited for. ``TimeoutError`` after
        ``timeout`` seconds, naming how many tasks are left."""
        from ...emulator import ManualClock

        emulator = self.emulator
        deadline = time.monotonic() + timeout
        while True:
            emulator.wait_idle(timeout=max(0.1, deadline - time.monotonic()))
            left = emulator.pending()
            if left == 0:
                return
            clock = emulator.clock
            if isinstance(clock, ManualClock):
                due = self._next_due()
                # A millisecond past it: the listed time is rounded to microseconds, the
                # emulator's own has nanoseconds.
                if due is not None and due + 0.001 > clock.now():
                    clock.set(due + 0.001)
                    continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"{left} task(s) had not run after {timeout}s; a task "
                                   "due later than that (countdown, eta) needs a longer "
                                   "timeout or an emulator with a manual clock")
            time.sleep(0.01)  # a dispatch in flight or due on the real clock; bounded above

    def _next_due(self) -> float | None:
        """The earliest schedule time of a task the emulator holds (Cloud Tasks' own list)."""
        client = self.emulator.tasks_client()
        times = [task.schedule_time.timestamp()
                 for queue in client.list_queues(parent=self._location())
                 for task in client.list_tasks(parent=queue.name)]
        return min(times, default=None)

    def _location(self) -> str:
        from ... import gcp

        return gcp.queue_path(self.app, None).rsplit("/queues/", 1)[0]


@contextmanager
def start_worker(app: Celery, concurrency: int = 1, pool: str = "solo",
                 loglevel: str | int = "error", logfile: str | None = None,
                 perform_ping_check: bool = True, ping_task_timeout: float = 10.0,
                 shutdown_timeout: float = 10.0, *, emulator: Emulator | None = None,
                 **kwargs: Any) -> Iterator[TestWorker]:
    """Serve ``app`` behind an emulator until the block ends; yields a :class:`TestWorker`.

    ``emulator``: a running :class:`~celery_gcp.emulator.Emulator` to use (one with a manual
    clock makes the app's clock follow it); by default one is started for the block. While
    the worker runs, the ``*_EMULATOR_HOST`` variables point Google's clients at it, the app
    sends through it (``app.transport``) and ``task_base_url`` is the worker's URL. Celery's
    ``concurrency``, ``pool``, ``loglevel``, ``logfile`` and worker options are accepted and
    have no effect: the worker is an HTTP server, each request a run. With
    ``perform_ping_check``, ``celery.ping`` is sent and its run waited for before the block
    starts, as Celery checks its worker.
    """
    with ExitStack() as stack:
        if emulator is None:
            from ...emulator import Emulator

            emulator = stack.enter_context(Emulator())
        stack.enter_context(_environment(emulator))
        stack.enter_context(_app_clock(app, emulator))
        worker = _serve(app, emulator, stack, shutdown_timeout)
        if perform_ping_check:
            _ping(worker, ping_task_timeout)
        yield worker


@contextmanager
def _environment(emulator: Emulator) -> Iterator[None]:
    """The emulator's variables set (and put back afterwards)."""
    saved = {variable: os.environ.get(variable) for variable in _VARIABLES}
    os.environ.update(emulator.environ())
    try:
        yield
    finally:
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


@contextmanager
def _app_clock(app: Celery, emulator: Emulator) -> Iterator[None]:
    """With a manual emulator clock, the app's ``now()`` follows it (ETAs, token times)."""
    from ...emulator import ManualClock

    clock = emulator.clock
    if not isinstance(clock, ManualClock):
        yield
        return
    app.now = lambda: datetime.fromtimestamp(clock.now(), UTC)  # type: ignore[method-assign]
    try:
        yield
    finally:
        del app.now


def _serve(app: Celery, emulator: Emulator, stack: ExitStack,
           shutdown_timeout: float) -> TestWorker:
    """Configure ``app`` for the emulator, serve it, create its queues."""
    from ...testing import serve

    app.finalize()
    app.set_current()
    conf = app.conf
    conf.gcp_project = conf.gcp_project or "local"
    conf.gcp_service_account = conf.gcp_service_account or TEST_SERVICE_ACCOUNT
    conf.task_oidc_certs_url = emulator.certs_url
    served = _Served(app)
    url = stack.enter_context(serve(served))
    conf.task_base_url = url
    saved_transport = app._transport
    transport = CloudTasksTransport(client=emulator.tasks_client(),
                                    clock=lambda: app.now().timestamp())
    app.transport = transport

    def restore() -> None:
        transport.close()
        app._transport = saved_transport

    stack.callback(restore)
    _create_queues(app)
    return TestWorker(app, emulator, url, served)


def _create_queues(app: Celery) -> None:
    """Create (or update) in the emulator every queue the app's tasks can be routed to."""
    from ... import gcp, queues

    transport = app.transport
    assert isinstance(transport, CloudTasksTransport)
    specs = queues.desired(app, lambda name: gcp.queue_path(app, name))
    queues.apply(queues.plan(specs, transport.get_queue), transport.client())


class _Served:
    """The ASGI app the worker serves: ``app.asgi_app()``, built again when tasks were
    registered since (a FastAPI app copies the router's routes when it includes it)."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.rebuild()

    def rebuild(self) -> None:
        """Build the served app from the app's tasks now."""
        self._count = len(self.app.tasks)
        self._asgi = self.app.asgi_app()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if len(self.app.tasks) != self._count:
            self.rebuild()
        await self._asgi(scope, receive, send)


def _ping(worker: TestWorker, timeout: float) -> None:
    """``celery.ping`` sent and run (its result read when the app keeps results)."""
    app = worker.app
    ping = app.tasks.get("celery.ping")
    if ping is None:
        raise RuntimeError("perform_ping_check needs the celery.ping task: import "
                           "celery_gcp.contrib.testing.tasks before the app is created, or "
                           "pass perform_ping_check=False")
    result = ping.delay()
    worker.drain(timeout=timeout)
    if app.backend is not None:
        answer = result.get(timeout=timeout)
        assert answer == "pong", f"celery.ping answered {answer!r}"
