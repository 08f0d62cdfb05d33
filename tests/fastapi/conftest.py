"""A FastAPI app served over real HTTP and the emulator (Cloud Tasks and Cloud Scheduler)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from celery_gcp.emulator import Clock, Emulator, ManualClock
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


@contextmanager
def make_site(monkeypatch: pytest.MonkeyPatch, module_emulator: SharedEmulator,
              clock: Clock | None = None) -> Iterator[Site]:
    emu = module_emulator.begin(clock)
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


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch, module_emulator: SharedEmulator) -> Iterator[Site]:
    """The emulator (its variables set, so default clients use it) and an app served at
    ``site.url``; the queue QUEUE exists."""
    with make_site(monkeypatch, module_emulator) as made:
        yield made


@pytest.fixture
def clock() -> ManualClock:
    """The emulator's clock in ``manual_site``: it moves only when advanced."""
    return ManualClock()


@pytest.fixture
def manual_site(monkeypatch: pytest.MonkeyPatch, module_emulator: SharedEmulator,
                clock: ManualClock) -> Iterator[Site]:
    """``site`` with the emulator on ``clock`` (retries wait for ``clock.advance``)."""
    with make_site(monkeypatch, module_emulator, clock) as made:
        yield made
