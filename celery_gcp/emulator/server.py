"""One running emulator: the gRPC server (Cloud Tasks + Cloud Scheduler), the HTTP side, the
dispatch loops, all on one asyncio event loop."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import grpc

from ..platform import QUEUE_REUSE_SECONDS, TASK_RETENTION_SECONDS
from ..utils.serving import stoppable_server
from .clock import Clock
from .core import Core
from .dispatch import HttpSender
from .faults import Faults
from .locations import LocationsService
from .oidc import TokenIssuer
from .scheduler_service import SchedulerService
from .store import SqliteStore, Store
from .tasks_service import TasksService
from .web import web_app

__all__ = ["EmulatorServer"]

logger = logging.getLogger("celery_gcp.emulator")


class EmulatorServer:
    """The emulator's services on the running event loop; :class:`Emulator` runs it in a thread.

    ``port=0`` / ``http_port=0`` pick free ports; read :attr:`port` and :attr:`http_port`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, http_port: int = 0,
                 data_dir: str | Path | None = None, clock: Clock | None = None,
                 tombstone_seconds: float = 3600.0,
                 queue_reuse_seconds: float = QUEUE_REUSE_SECONDS,
                 task_retention_seconds: float = TASK_RETENTION_SECONDS,
                 faults: Faults | None = None) -> None:
        self.host = host
        self.port = port
        self.http_port = http_port
        self.clock = clock or Clock()
        self.faults = faults or Faults()
        self.store: Store = SqliteStore(data_dir) if data_dir else Store()
        snapshot = self.store.load(self.clock.now())
        self.issuer = TokenIssuer(snapshot.key_pem, clock=self.clock.now)
        if snapshot.key_pem is None:
            self.store.put_key(self.issuer.private_key_pem())
        self.core = Core(self.clock, self.store, HttpSender(self.faults, self.issuer, self.clock),
                         self.faults, tombstone_seconds, dict(snapshot.tombstones),
                         queue_reuse_seconds=queue_reuse_seconds,
                         task_retention_seconds=task_retention_seconds,
                         deleted_queues=dict(snapshot.deleted_queues))
        self.tasks = TasksService(self.core)
        self.tasks.restore(snapshot.queues, snapshot.tasks)
        self.scheduler = SchedulerService(self.core)
        self.scheduler.restore(snapshot.jobs)
        self._grpc: grpc.aio.Server | None = None
        self._http: Any = None
        self._http_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind the ports and start serving and dispatching."""
        import uvicorn

        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        locations = LocationsService(
            lambda: [*self.tasks.queues, *self.scheduler.jobs])
        server.add_generic_rpc_handlers([self.tasks.handler(), self.scheduler.handler(),
                                         self.tasks.operations.handler(self.faults),
                                         locations.handler(self.faults)])
        self.port = server.add_insecure_port(f"{self.host}:{self.port}")
        await server.start()
        self._grpc = server
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                             socket.SOCK_STREAM, socket.IPPROTO_TCP)  # Nagle off (asyncio)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.http_port))
        sock.listen(128)
        self.http_port = sock.getsockname()[1]
        config = uvicorn.Config(web_app(self), log_level="warning", lifespan="off")
        self._http = stoppable_server(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[sock]))
        self.tasks.start()
        self.scheduler.start()
        logger.info("emulator serving gRPC on %s:%s, HTTP on http://%s:%s",
                    self.host, self.port, self.host, self.http_port)

    def busy(self) -> bool:
        """Whether any dispatch is in flight or due now (rate limits and backoffs count as
        due work that is waiting; paused queues and jobs do not)."""
        return any(r.busy() for r in self.tasks.queues.values()) or any(
            j.busy() for j in self.scheduler.jobs.values())

    def pending(self) -> int:
        """What stands between the emulator and idle: the tasks its queues hold (waiting, due
        or being dispatched: a task leaves its queue once it succeeded or gave up) plus the
        Cloud Scheduler executions in flight (fired, their call not answered yet or a retry
        to come). Paused queues' tasks count; a job's next scheduled fire does not."""
        return (sum(len(r.tasks) for r in self.tasks.queues.values())
                + self.scheduler.executions())

    def forget(self) -> None:
        """Forget what finished work left behind: task-name tombstones, deleted queues'
        names, the dispatch log and finished operations (with :meth:`Emulator.reset`; call on
        the emulator's loop)."""
        self.core.tombstones.clear()
        self.core.deleted_queues.clear()
        self.core.store.forget_tombstones()
        self.core.recent.clear()
        self.tasks.operations.forget()
        self.tasks.policies.clear()

    async def stop(self) -> None:
        """Stop dispatching and serving; the store is closed (a data dir keeps the state)."""
        await self.tasks.stop()
        await self.scheduler.stop()
        if self._grpc is not None:
            await self._grpc.stop(grace=None)
        if self._http is not None:
            self._http.stop()
            if self._http_task is not None:
                await self._http_task
        await self.core.sender.aclose()
        self.store.close()
