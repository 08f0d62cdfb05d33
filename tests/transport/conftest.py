"""An app wired to the emulator and a real worker: Cloud Tasks end to end on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from celery_gcp import Celery
from celery_gcp.emulator import Emulator, ManualClock
from celery_gcp.testing import serve

from ..calls import Calls
from ..shared_emulator import SharedEmulator

#: What the worker ran: (task name, args) in order, waitable.
Ran = Calls


@dataclass
class Stack:
    """An app whose tasks go through the emulator to a worker over HTTP."""

    app: Celery
    emu: Emulator
    ran: Ran
    url: str
    clock: ManualClock | None

    def queue(self, name: str = "celery", **fields: Any) -> Any:
        client = self.emu.tasks_client()
        parent = "projects/p/locations/l"
        return client.create_queue(parent=parent, queue={"name": f"{parent}/queues/{name}",
                                                         **fields})


@pytest.fixture
def stack_factory(monkeypatch: pytest.MonkeyPatch,
                  module_emulator: SharedEmulator) -> Iterator[Callable[..., Stack]]:
    """``stack_factory(define, manual_clock=False)``: ``define(app, ran)`` declares the tasks."""
    servers: list[Any] = []

    def make(define: Callable[[Celery, Ran], None], manual_clock: bool = False,
             **settings: Any) -> Stack:
        clock = ManualClock(start=time.time()) if manual_clock else None
        emu = module_emulator.begin(clock)
        monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", emu.address)
        # Verified callers, as in production: the emulator signs, the worker checks.
        settings = {"task_auth": "oidc", "task_oidc_certs_url": emu.certs_url,
                    "gcp_service_account": "tasks@p.iam.gserviceaccount.com", **settings}
        app = Celery("proj", gcp_project="p", gcp_location="l", **settings)
        if clock is not None:  # the app reads the time the emulator keeps
            manual = clock
            app.now = lambda: datetime.fromtimestamp(manual.now(), UTC)  # type: ignore[method-assign]
        ran = Ran()
        define(app, ran)
        api = FastAPI()
        api.include_router(app.router)
        server = serve(api)
        url = server.__enter__()
        servers.append(server)
        app.conf.task_base_url = url
        stack = Stack(app, emu, ran, url, clock)
        stack.queue()
        return stack

    yield make
    module_emulator.reset()
    for server in reversed(servers):
        server.__exit__(None, None, None)
