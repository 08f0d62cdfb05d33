"""Shared fixtures: a fresh app with the memory transport, and a worker served over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from celery_gcp import Celery
from celery_gcp.signals import Signal
from celery_gcp.testing import deliver, serve
from celery_gcp.transport import MemoryTransport

from .shared_emulator import SharedEmulator, shared_emulator


@pytest.fixture(autouse=True)
def _no_caller_verification_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests of the worker run without caller verification (task_auth from the
    environment); tests/test_auth.py, the end-to-end tests through the emulator and the
    examples under `dev` turn it on."""
    monkeypatch.setenv("CELERY_GCP_TASK_AUTH", "none")


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[SharedEmulator]:
    """An emulator (on the real clock by default) for the tests of one module: a test's
    fixture takes it with ``begin()`` and gives it back with ``reset()``."""
    with shared_emulator() as shared:
        yield shared


@pytest.fixture
def app() -> Iterator[Celery]:
    """An app that records sent messages."""
    application = Celery("proj", broker_url="memory://")
    yield application
    application.close()


@pytest.fixture
def sent(app: Celery) -> list[Any]:
    """The memory transport's list of sent messages."""
    transport = app.transport
    assert isinstance(transport, MemoryTransport)
    return transport.sent


class Worker:
    """A running worker: the app's router in FastAPI, under uvicorn, with an HTTP client."""

    def __init__(self, app: Celery, client: httpx.Client) -> None:
        self.app = app
        self.client = client

    def deliver(self, message: Any) -> httpx.Response:
        return deliver(self.client, self.app, message)

    def deliver_sent(self) -> list[httpx.Response]:
        """Deliver every recorded message (and those their runs send) until none is left."""
        transport = self.app.transport
        assert isinstance(transport, MemoryTransport)
        responses = []
        while transport.sent:
            for message in transport.pop():
                responses.append(self.deliver(message))
        return responses

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, **kwargs)


@pytest.fixture
def worker() -> Callable[[Celery], AbstractContextManager[Worker]]:
    """``with worker(app) as w:`` serves ``app.router`` over real HTTP (define tasks first)."""

    @contextmanager
    def start(app: Celery) -> Iterator[Worker]:
        api = FastAPI()
        api.include_router(app.router)
        with serve(api) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield Worker(app, client)

    return start


@pytest.fixture
def receive() -> Iterator[Callable[[Signal], list[dict[str, Any]]]]:
    """``calls = receive(signal)`` records the keyword arguments of every send."""
    connected: list[tuple[Signal, Callable[..., None]]] = []

    def connect(signal: Signal) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []

        def receiver(**kwargs: Any) -> None:
            calls.append(kwargs)

        signal.connect(receiver)
        connected.append((signal, receiver))
        return calls

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)
