"""Fixtures for emulator conformance tests: an emulator, and a real HTTP handler to dispatch to."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from celery_gcp.emulator import Emulator, ManualClock
from celery_gcp.testing import serve

from ..shared_emulator import SharedEmulator, shared_emulator

# 2026-03-27 00:00 UTC, a Friday two days before Europe's spring DST change.
START = 1774569600.0


@dataclass
class Received:
    """One request the handler received."""

    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Handler:
    """A real HTTP endpoint that records requests and answers as told."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    #: Statuses to answer, in order; after they run out, ``default``.
    statuses: list[int] = field(default_factory=list)
    default: int = 200
    #: Seconds to wait before answering (real time), per path, or until :meth:`release`.
    delays: dict[str, float] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _released: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)

    def release(self) -> None:
        """Answer the delayed requests now, and later ones without delay."""
        if not self._released.done():
            self._released.set_result(None)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self._cond:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        delay = self.delays.get(request.url.path, 0.0)
        if delay:  # asyncio.wait, unlike wait_for, leaves the future uncancelled
            await asyncio.wait([asyncio.wrap_future(self._released)], timeout=delay)
        with self._cond:
            self.in_flight -= 1
            self.received.append(Received(request.url.path, request.method,
                                          dict(request.headers), body, time.time()))
            status = self.statuses.pop(0) if self.statuses else self.default
            self._cond.notify_all()
        return Response(status_code=status)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait (bounded) until ``count`` requests arrived; returns them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(
                    f"expected {count} requests within {timeout}s, got {len(self.received)}")
            return list(self.received)


@pytest.fixture
def handler() -> Iterator[Handler]:
    """A recording HTTP handler on a loopback port; ``handler.url`` is its base URL."""
    recorder = Handler()
    app = Starlette(routes=[Route("/{path:path}", recorder.handle, methods=["GET", "POST", "PUT",
                                                                      "DELETE", "PATCH"])])
    with serve(app) as url:
        recorder.url = url
        yield recorder
        recorder.release()  # no answer still waits when the server stops


@pytest.fixture(scope="module")
def manual_module_emulator() -> Iterator[SharedEmulator]:
    with shared_emulator(tombstone_seconds=600) as shared:
        yield shared


@pytest.fixture
def emu(module_emulator: SharedEmulator) -> Iterator[Emulator]:
    """An emulator on the real clock (the module's, as new)."""
    yield module_emulator.begin()
    module_emulator.reset()


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting at :data:`START`."""
    return ManualClock(start=START)


@pytest.fixture
def manual_emu(manual_module_emulator: SharedEmulator, clock: ManualClock) -> Iterator[Emulator]:
    """An emulator on a manual clock (the module's, as new, on ``clock``)."""
    yield manual_module_emulator.begin(clock)
    manual_module_emulator.reset()


@pytest.fixture
def make_queue(emu: Emulator) -> Callable[..., Any]:
    """``make_queue(name, **fields)`` creates a queue on the real-clock emulator."""
    return _queue_factory(emu)


@pytest.fixture
def make_manual_queue(manual_emu: Emulator) -> Callable[..., Any]:
    """``make_manual_queue(name, **fields)`` creates a queue on the manual-clock emulator."""
    return _queue_factory(manual_emu)


def _queue_factory(emulator: Emulator) -> Callable[..., Any]:
    client = emulator.tasks_client()

    def make(name: str = "q", **fields: Any) -> Any:
        queue = {"name": f"{emulator.location}/queues/{name}", **fields}
        return client.create_queue(parent=emulator.location, queue=queue)

    return make


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds, bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.005)
