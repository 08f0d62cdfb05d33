"""``celery-gcp dev``: the whole stack on one machine, with no cloud account and no Docker.

An embedded emulator (or the one ``CLOUD_TASKS_EMULATOR_HOST`` names), the app's queues created
in it, and the worker serving the task endpoints over real HTTP, with a readable line for each
task as it is sent, started, retried, finished or failed. A task's ``sent`` line always comes
before its ``started`` line, and dev's own calls to the emulator (its polling, its token keys)
stay out of the project's log, whatever level the project gives the root logger.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import queues
from .app import Celery
from .exceptions import ImproperlyConfigured
from .layers import Layer
from .platform import CERTS_URL_VARIABLE, SCHEDULER_VARIABLE, TASKS_VARIABLE
from .utils.imports import import_object

if TYPE_CHECKING:
    from .einfo import ExceptionInfo
    from .exceptions import Retry
    from .message import Message
    from .transport import Receipt
    from .worker.run import TaskRun

__all__ = ["DEV_SERVICE_ACCOUNT", "DevStack", "TaskLog"]

#: The identity tasks are signed as under ``dev`` when the app names none.
DEV_SERVICE_ACCOUNT = "dev@local.iam.gserviceaccount.com"


class TaskLog(Layer):
    """Prints one line per task event; counts failures. A layer of the app's
    (:mod:`celery_gcp.layers`), so it sees every send and run of it."""

    def __init__(self, echo: Callable[[str], None] = click.echo) -> None:
        self.echo = echo
        self.failures = 0
        self.start = time.monotonic()
        self._app: Celery | None = None
        # The ``sent`` line of each send in progress, by task id: the worker can start the
        # task (on its own thread) before the transport's send returns, and then prints it.
        self._sending: dict[str, str] = {}
        self._lock = threading.Lock()

    def _line(self, event: str, text: str) -> None:
        self.echo(f"[{time.monotonic() - self.start:7.2f}s] {event:<9} {text}")

    def connect(self, app: Celery | None = None) -> None:
        """Start logging the task events of ``app`` (default: the current app)."""
        from ._state import get_current_app

        self._app = app or get_current_app()
        self._app.layers.add(self)

    def disconnect(self) -> None:
        """Stop logging."""
        if self._app is not None:
            self._app.layers.remove(self)
            self._app = None

    def before_send(self, message: Message) -> None:
        """Hold the ``sent`` line (retry count, ETA) until the send returns or the task
        starts, whichever comes first."""
        eta = f" eta {message.eta.strftime('%H:%M:%S')}" if message.eta else ""
        retry = f" retry {message.retries}" if message.retries else ""
        with self._lock:
            self._sending[message.id] = f"{message.task}[{_short(message.id)}]{retry}{eta}"

    def after_send(self, message: Message, receipt: Receipt) -> None:
        """``sent``, unless the task's start printed it already."""
        self._sent(message.id)

    def _sent(self, task_id: str) -> None:
        with self._lock:  # held while printing: no other line of the task can come first
            text = self._sending.pop(task_id, None)
            if text is not None:
                self._line("sent", text)

    def before_run(self, run: TaskRun) -> None:
        """``started``, with the arguments (after the task's ``sent`` line)."""
        self._sent(run.message.id)  # the task runs, so its send went through
        shown = ", ".join([*map(repr, run.args),
                           *(f"{k}={v!r}" for k, v in run.kwargs.items())])
        self._line("started", f"{run.task.name}[{_short(run.message.id)}]({shown})")

    def retried(self, run: TaskRun, retry: Retry, einfo: ExceptionInfo) -> None:
        """``retried``, with the reason."""
        self._line("retried", f"{run.task.name}[{_short(run.message.id)}] {retry}")

    def succeeded(self, run: TaskRun, retval: Any) -> None:
        """``finished``, with the return value."""
        self._line("finished", f"{run.task.name}[{_short(run.message.id)}] -> {retval!r}")

    def failed(self, run: TaskRun, exc: BaseException, einfo: ExceptionInfo) -> None:
        """``failed``, with the exception; counted."""
        self.failures += 1
        self._line("failed", f"{run.task.name}[{_short(run.message.id)}] {exc!r}")


class _QuietOwnCalls(logging.Filter):
    """Drops httpx's ``HTTP Request: ...`` INFO lines of dev's own calls to the emulator (its
    status polling, the token keys), so a project logging at INFO sees its own lines only."""

    def __init__(self, origins: set[str]) -> None:
        super().__init__()
        self.origins = tuple(origins)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(str(arg).startswith(self.origins) for arg in args)


def _origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, with the slash that ends it."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/"


def _short(task_id: str) -> str:
    """A uuid's first 8 characters; other ids (beat fires, caller-given) in full."""
    return task_id[:8] if len(task_id) == 36 and task_id.count("-") == 4 else task_id


class DevStack:
    """Emulator + queues + worker for ``app``; use as a context manager."""

    def __init__(self, app: Celery, port: int = 8000, host: str = "127.0.0.1",
                 asgi: Any = None, data_dir: str | os.PathLike[str] | None = None) -> None:
        self.app = app
        #: Where ``dev`` keeps what it stores (the results' SQLite file), if the app names
        #: no ``result_backend`` of its own; ``None``: no store.
        self.data_dir = data_dir
        #: What to serve: an ASGI app or ``"module:attribute"`` (default: the app's tasks).
        self.asgi = asgi
        self.host = host
        self.port = port
        self.emulator: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._quiet: _QuietOwnCalls | None = None

    def __enter__(self) -> DevStack:
        from .emulator.process import EmulatorProcess
        from .testing import serve
        from .transport.cloudtasks import CloudTasksTransport

        self._saved_env = {v: os.environ.get(v) for v in (
            TASKS_VARIABLE, SCHEDULER_VARIABLE, CERTS_URL_VARIABLE)}
        self._serve: Any = None
        self._dashboard: Any = None
        #: Where the dashboard is served (:mod:`celery_gcp.dashboard`).
        self.dashboard_url = ""
        try:
            address = os.environ.get(TASKS_VARIABLE)
            if not address:
                self.emulator = EmulatorProcess(host=self.host).start()
                address = self.emulator.address
                os.environ[TASKS_VARIABLE] = address
                os.environ[CERTS_URL_VARIABLE] = f"{self.emulator.http_url}/oauth2/v1/certs"
            # One emulator serves both: never let the schedule reach the real Cloud Scheduler.
            os.environ.setdefault(SCHEDULER_VARIABLE, address)
            own = {_origin(self.emulator.http_url)} if self.emulator is not None else set()
            if os.environ.get(CERTS_URL_VARIABLE):
                own.add(_origin(os.environ[CERTS_URL_VARIABLE]))
            self._quiet = _QuietOwnCalls(own)
            logging.getLogger("httpx").addFilter(self._quiet)
            self.address = address
            conf = self.app.conf
            conf.gcp_project = conf.gcp_project or "local"
            self.results = self.result_store_url()
            # Tasks carry the emulator's OIDC tokens and the worker checks them: the code path
            # of production, with the emulator's keys (and only those) trusted.
            conf.gcp_service_account = conf.gcp_service_account or DEV_SERVICE_ACCOUNT
            certs = conf.get("task_oidc_certs_url") or os.environ.get(CERTS_URL_VARIABLE)
            if certs:
                conf.task_oidc_certs_url = certs
            elif self.app.verifier.enabled:
                raise ImproperlyConfigured(
                    f"{TASKS_VARIABLE} names an emulator, but not where its token keys "
                    f"are: set {CERTS_URL_VARIABLE} (`celery-gcp emulator` prints it)")
            asgi = import_object(self.asgi) if isinstance(self.asgi, str) else self.asgi
            # Local development: the task list in /docs helps, and the port is the machine's.
            self._serve = serve(asgi or self.app.asgi_app(docs=True), host=self.host,
                                port=self.port)
            url = self._serve.__enter__()
            conf.task_base_url = url
            self.url = url
            self.transport = CloudTasksTransport(clock=lambda: self.app.now().timestamp())
            self.app.transport = self.transport
            self.create_queues()
            self.jobs = self.sync_schedule()
            from .dashboard import dashboard_app

            # The dashboard, over the emulator as over a real project, with its actions on.
            self._dashboard = serve(dashboard_app(self.app, actions=True), host=self.host)
            self.dashboard_url = self._dashboard.__enter__()
        except BaseException:
            self.__exit__(None, None, None)  # nothing keeps running after a failed start
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._dashboard is not None:
            self._dashboard.__exit__(None, None, None)
            self._dashboard = None
        if self._serve is not None:
            self._serve.__exit__(None, None, None)
        transport = getattr(self, "transport", None)
        if transport is not None:  # before the emulator goes: its GOAWAY would be logged
            transport.close()
        if self.emulator is not None:
            self.emulator.stop()
        if self._quiet is not None:
            logging.getLogger("httpx").removeFilter(self._quiet)
            self._quiet = None
        for variable, value in self._saved_env.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value

    def result_store_url(self) -> str | None:
        """The app's ``result_backend``, or else (with :attr:`data_dir`) an SQLite file
        there, set as the app's: ``.get()`` works locally with no setup."""
        conf = self.app.conf
        if not conf.get("result_backend") and self.data_dir is not None:
            path = Path(self.data_dir).resolve()
            path.mkdir(parents=True, exist_ok=True)
            conf.result_backend = f"db+sqlite:///{path / 'results.sqlite'}"
        url = conf.get("result_backend")
        return str(url) if url else None

    def queue_names(self) -> list[str]:
        """Every Celery queue the app's tasks can be routed to."""
        return queues.queue_names(self.app)

    def create_queues(self) -> None:
        """Create (or update) each queue in the emulator, configured as the app declares."""
        from . import gcp

        specs = queues.desired(self.app, lambda name: gcp.queue_path(self.app, name))
        changes = queues.plan(specs, self.transport.get_queue)
        queues.apply(changes, self.transport.client())

    def sync_schedule(self) -> list[Any]:
        """Make the emulator's Cloud Scheduler jobs match ``beat_schedule`` (pruning the rest);
        returns the jobs' changes."""
        from . import beat, gcp

        if not self.app.conf.beat_schedule:
            return []
        return beat.sync(self.app, gcp.scheduler_client(), prune=True)

    def pending(self) -> int:
        """Tasks the embedded emulator still holds plus its Cloud Scheduler executions in
        flight (0 without an embedded emulator)."""
        return 0 if self.emulator is None else int(self.emulator.pending())

    def wait_until_done(self, timeout: float) -> bool:
        """Wait until no task is waiting, due or running and no fired Cloud Scheduler job
        awaits its answer; ``False`` on timeout."""
        if self.emulator is None:
            raise RuntimeError("waiting for the tasks to finish needs the embedded emulator: "
                               f"unset {TASKS_VARIABLE} to use it")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # A task leaves its queue only once it succeeded or gave up, and a retry or a
            # follow-up task is created before the task that sends it is done. A fired job
            # counts until its call is answered, and the beat endpoint sends its task first.
            if self.pending() == 0:
                return True
            time.sleep(0.05)  # polling the emulator's state, bounded by the deadline
        return False
