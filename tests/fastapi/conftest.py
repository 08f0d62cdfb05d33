"""A FastAPI app served over real HTTP and the emulator (Cloud Tasks and Cloud Scheduler)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from celery_gcp.emulator import Emulator
from celery_gcp.fastapi import location_path, queue_path
from celery_gcp.testing import serve

from ..calls import Calls
from ..shared_emulator import SharedEmulator

QUEUE = queue_path(project="p", location="l", queue="routes")
LOCATION = location_path(project="p", location="l")


#: What the endpoints received, by endpoint name, waitable.
Received = Calls


@dataclass
class Site:
    """A served FastAPI app (add routers to ``api`` at any time) and the emulator."""

    api: FastAPI
    url: str
    emu: Emulator
    received: Received


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch, module_emulator: SharedEmulator) -> Iterator[Site]:
    """The emulator (its variables set, so default clients use it) and an app served at
    ``site.url``; the queue QUEUE exists."""
    emu = module_emulator.begin()
    for name, value in emu.environ().items():
        monkeypatch.setenv(name, value)
    api = FastAPI()
    with serve(api) as url:
        try:
            emu.tasks_client().create_queue(parent=QUEUE.rsplit("/queues/", 1)[0],
                                            queue={"name": QUEUE})
            yield Site(api, url, emu, Received())
        finally:
            module_emulator.reset()
