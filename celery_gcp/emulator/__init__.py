"""A local Cloud Tasks + Cloud Scheduler emulator, for development and tests.

It speaks the real gRPC APIs (Cloud Tasks v2, Cloud Scheduler v1), so the official clients
work unchanged, and behaves as the services do: named-task dedup with tombstones, retries by
``retry_config``, rate limits, dispatch deadlines, paused queues, OIDC tokens, cron schedules in
IANA time zones, durability with a data dir, a controllable clock and fault injection.

Example::

    with Emulator() as emu:
        client = emu.tasks_client()
        client.create_queue(parent=emu.location, queue={"name": f"{emu.location}/queues/q"})

From the command line: ``celery-gcp emulator --port 8123 [--data-dir DIR]``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..platform import (
    CERTS_URL_VARIABLE,
    QUEUE_REUSE_SECONDS,
    SCHEDULER_VARIABLE,
    TASK_RETENTION_SECONDS,
    TASKS_VARIABLE,
)
from .clients import async_scheduler_client, async_tasks_client, scheduler_client, tasks_client
from .clock import Clock, ManualClock
from .faults import Faults

if TYPE_CHECKING:
    from .server import EmulatorServer

__all__ = [
    "Clock",
    "Emulator",
    "EmulatorServer",
    "Faults",
    "ManualClock",
    "async_scheduler_client",
    "async_tasks_client",
    "scheduler_client",
    "tasks_client",
]


T = TypeVar("T")


def __getattr__(name: str) -> Any:
    # The server (gRPC services, the HTTP side, protobuf types) loads on first use, so a
    # process that only points clients at an emulator never imports it.
    if name == "EmulatorServer":
        from .server import EmulatorServer

        return EmulatorServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Emulator:
    """An emulator running in a background thread; use it as a context manager.

    ``port=0`` picks a free port. ``clock=ManualClock(...)`` lets a test move time.
    ``tombstone_seconds``: how long an ended task's name stays reserved;
    ``queue_reuse_seconds``: how long a deleted queue's name does (default 3 days, as
    DeleteQueue's docs say); ``task_retention_seconds``: how long after its creation a task
    is deleted, dispatched or not (default 31 days); all on the emulator's clock.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, http_port: int = 0,
                 data_dir: str | Path | None = None, clock: Clock | None = None,
                 tombstone_seconds: float = 3600.0,
                 queue_reuse_seconds: float = QUEUE_REUSE_SECONDS,
                 task_retention_seconds: float = TASK_RETENTION_SECONDS,
                 project: str = "emulator", location: str = "local") -> None:
        self.faults = Faults()
        self.clock = clock or Clock()
        self._options: dict[str, Any] = {
            "host": host, "port": port, "http_port": http_port, "data_dir": data_dir,
            "clock": self.clock, "tombstone_seconds": tombstone_seconds,
            "queue_reuse_seconds": queue_reuse_seconds,
            "task_retention_seconds": task_retention_seconds, "faults": self.faults,
        }
        #: ``projects/{project}/locations/{location}``, a parent for queues and jobs.
        self.location = f"projects/{project}/locations/{location}"
        self.server: EmulatorServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reset_clients: tuple[Any, Any] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Emulator:
        """Start serving; returns once the ports accept connections."""
        from .server import EmulatorServer

        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self.server = EmulatorServer(**self._options)
                loop.run_until_complete(self.server.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="celery-gcp-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=60):
            raise RuntimeError("the emulator did not start within 60 s")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving (a data dir keeps the state for the next start)."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop = self._thread = None
        self._reset_clients = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Make the running emulator as new, for tests that share one: faults disarmed, every
        job and queue (with its tasks) deleted, task-name tombstones, deleted queues' names
        (so a queue can be created again at once), the dispatch log and finished operations
        forgotten. The clock is the caller's to reset."""
        self.faults.clear()
        tasks, scheduler = self._clients()
        for job in self._read(lambda server: list(server.scheduler.jobs), 10.0):
            scheduler.delete_job(name=job)
        for queue in self._read(lambda server: list(server.tasks.queues), 10.0):
            tasks.delete_queue(name=queue)
        self._read(lambda server: server.forget(), 10.0)

    def _clients(self) -> tuple[Any, Any]:
        """Clients for :meth:`reset`, made once per start."""
        if self._reset_clients is None:
            self._reset_clients = (self.tasks_client(), self.scheduler_client())
        return self._reset_clients

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until nothing is due or in flight at the clock's current time.

        With a :class:`ManualClock`, call it after :meth:`ManualClock.advance` to let every
        dispatch that became due finish before the next assertion.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self._read(lambda server: server.busy(), timeout):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the emulator was still busy after {timeout}s")
            time.sleep(0.005)  # polling a condition, bounded by the deadline

    def pending(self) -> int:
        """Tasks held plus Cloud Scheduler executions in flight (0: idle); see
        :meth:`EmulatorServer.pending`."""
        return self._read(lambda server: server.pending(), 10.0)

    def _read(self, read: Callable[[EmulatorServer], T], timeout: float) -> T:
        """``read(server)`` run on the emulator's loop, where its state changes."""
        server, loop = self.server, self._loop
        if server is None or loop is None:
            raise RuntimeError("start the emulator first")

        async def probe() -> T:
            return read(server)

        return asyncio.run_coroutine_threadsafe(probe(), loop).result(timeout)

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC server (the value for the ``*_EMULATOR_HOST`` variables)."""
        assert self.server is not None, "start the emulator first"
        return f"{self.server.host}:{self.server.port}"

    @property
    def http_url(self) -> str:
        """Base URL of the HTTP side (keys, status)."""
        assert self.server is not None, "start the emulator first"
        return f"http://{self.server.host}:{self.server.http_port}"

    @property
    def certs_url(self) -> str:
        """Where the OIDC signing keys are published (Google's v1 certificate format)."""
        return f"{self.http_url}/oauth2/v1/certs"

    def environ(self) -> dict[str, str]:
        """The environment variables that point clients at this emulator, and workers at its
        token signing keys."""
        return {TASKS_VARIABLE: self.address, SCHEDULER_VARIABLE: self.address,
                CERTS_URL_VARIABLE: self.certs_url}

    def tasks_client(self) -> Any:
        """A sync ``CloudTasksClient`` connected to this emulator."""
        return tasks_client(self.address)

    def async_tasks_client(self) -> Any:
        """An async ``CloudTasksAsyncClient``; call inside the loop that will use it."""
        return async_tasks_client(self.address)

    def scheduler_client(self) -> Any:
        """A sync ``CloudSchedulerClient`` connected to this emulator."""
        return scheduler_client(self.address)

    def async_scheduler_client(self) -> Any:
        """An async ``CloudSchedulerAsyncClient``; call inside the loop that will use it."""
        return async_scheduler_client(self.address)
