"""Results end to end: a FastAPI app as migrated projects write it (POST starts a task and
returns its id; GET returns its state and result), the official Cloud Tasks client, the
emulator, and a worker served over real HTTP, with each store kind (memory, Redis, SQLite,
PostgreSQL: the ``store`` fixture)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from celery_gcp import Celery, Task
from celery_gcp.result import AsyncResult
from celery_gcp.results import MemoryStore, ResultStore
from celery_gcp.testing import serve

from ..transport.conftest import Ran, Stack, stack_factory  # noqa: F401 - the fixture

DEADLINE = 15.0


def project_api(app: Celery) -> FastAPI:
    """The status API a migrated project has."""
    api = FastAPI()

    @api.post("/jobs/{name}")
    def start(name: str, body: dict[str, Any]) -> dict[str, str]:
        return {"task_id": app.tasks[name].delay(**body).id}

    @api.get("/jobs/{task_id}")
    def status(task_id: str) -> dict[str, Any]:
        result = AsyncResult(task_id, app=app)
        state = result.state  # first: a ready state's result does not change after it
        value = result.result
        return {"state": state,
                "result": repr(value) if isinstance(value, BaseException) else value}

    return api


@pytest.fixture
def client_for() -> Iterator[Callable[[Celery], httpx.Client]]:
    opened: list[Any] = []

    def make(app: Celery) -> httpx.Client:
        server = serve(project_api(app))
        url = server.__enter__()
        client = httpx.Client(base_url=url, timeout=30)
        opened.append((server, client))
        return client

    yield make
    for server, client in reversed(opened):
        client.close()
        server.__exit__(None, None, None)


def poll(client: httpx.Client, task_id: str, state: str) -> dict[str, Any]:
    """GET the job until it is in ``state`` (within a deadline)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        seen: dict[str, Any] = client.get(f"/jobs/{task_id}").json()
        if seen["state"] == state:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} never reached {state}: last seen {seen}")
        time.sleep(0.02)  # polling a condition with a deadline, as the project's page does


def define(release: threading.Event) -> Callable[[Celery, Ran], None]:
    def tasks(app: Celery, ran: Ran) -> None:
        @app.task(name="proj.report", bind=True, track_started=True)
        def report(self: Task[Any, Any], rows: int) -> dict[str, int]:
            release.wait(DEADLINE)  # the test watches STARTED until it lets the task go
            for done in range(1, rows + 1):
                self.update_state(state="PROGRESS", meta={"done": done, "total": rows})
            ran.record("report", rows)
            return {"rows": rows}

        @app.task(name="proj.progress", bind=True)
        def progress(self: Task[Any, Any], rows: int) -> int:
            self.update_state(state="PROGRESS", meta={"done": 1, "total": rows})
            release.wait(DEADLINE)
            return rows

        @app.task(name="proj.fail")
        def fail(sku: str) -> None:
            raise LookupError(f"no such sku {sku}")

        @app.task(name="proj.retry", bind=True)
        def retry(self: Task[Any, Any]) -> None:
            raise self.retry(exc=ConnectionError("upstream"), countdown=3600)

        @app.task(name="proj.quiet", ignore_result=True)
        def quiet() -> int:
            ran.record("quiet", 1)
            return 1

    return tasks


def test_status_endpoint_follows_a_task(stack_factory: Any,  # noqa: F811
                                        client_for: Any, store: ResultStore) -> None:
    release = threading.Event()
    stack: Stack = stack_factory(define(release), result_extended=True)
    stack.app.backend = store
    client = client_for(stack.app)
    task_id = client.post("/jobs/proj.report", json={"rows": 2}).json()["task_id"]
    assert poll(client, task_id, "STARTED")["result"]["pid"]
    release.set()
    assert poll(client, task_id, "SUCCESS")["result"] == {"rows": 2}
    result = AsyncResult(task_id, app=stack.app)
    assert result.get(timeout=DEADLINE) == {"rows": 2}
    meta = stack.app.backend.get_meta(task_id)  # type: ignore[union-attr]
    assert meta is not None
    assert (meta["name"], meta["args"], meta["queue"]) == ("proj.report", [2], "celery")


def test_progress_from_update_state(stack_factory: Any, client_for: Any,  # noqa: F811
                                    store: ResultStore) -> None:
    release = threading.Event()
    stack: Stack = stack_factory(define(release))
    stack.app.backend = store
    client = client_for(stack.app)
    task_id = client.post("/jobs/proj.progress", json={"rows": 5}).json()["task_id"]
    assert poll(client, task_id, "PROGRESS")["result"] == {"done": 1, "total": 5}
    release.set()
    assert AsyncResult(task_id, app=stack.app).get(timeout=DEADLINE, interval=0.02) == 5


def test_get_streams_each_state_to_on_message(stack_factory: Any,  # noqa: F811
                                             store: ResultStore) -> None:
    # Celery's progress pattern: result.get(on_message=...) sees each PROGRESS, then the end.
    # Each step waits for the caller to have seen the one before, so none is skipped.
    seen_step = [threading.Event() for _ in range(3)]

    def tasks(app: Celery, ran: Ran) -> None:
        @app.task(name="proj.steps", bind=True)
        def steps(self: Task[Any, Any]) -> str:
            for done, seen in enumerate(seen_step):
                self.update_state(state="PROGRESS", meta={"done": done})
                seen.wait(DEADLINE)
            return "all done"

    stack: Stack = stack_factory(tasks)
    stack.app.backend = store
    messages: list[tuple[str, Any]] = []
    intervals: list[None] = []
    called_back: list[tuple[str, Any]] = []

    def on_message(meta: dict[str, Any]) -> None:
        messages.append((meta["status"], meta["result"]))
        if meta["status"] == "PROGRESS":
            seen_step[meta["result"]["done"]].set()

    result = stack.app.tasks["proj.steps"].delay()
    value = result.get(timeout=DEADLINE, interval=0.01, on_message=on_message,
                       on_interval=lambda: intervals.append(None),
                       callback=lambda task_id, v: called_back.append((task_id, v)))
    assert value == "all done"
    assert messages == [
        ("PROGRESS", {"done": 0}), ("PROGRESS", {"done": 1}), ("PROGRESS", {"done": 2}),
        ("SUCCESS", "all done")]
    assert intervals  # polled while the task ran
    assert called_back == [(result.id, "all done")]


def test_a_failed_task_is_failure_and_get_reraises(stack_factory: Any,  # noqa: F811
                                                   client_for: Any, store: ResultStore) -> None:
    stack: Stack = stack_factory(define(threading.Event()))
    stack.app.backend = store
    client = client_for(stack.app)
    task_id = client.post("/jobs/proj.fail", json={"sku": "X9"}).json()["task_id"]
    assert "no such sku X9" in poll(client, task_id, "FAILURE")["result"]
    with pytest.raises(LookupError, match="no such sku X9"):
        AsyncResult(task_id, app=stack.app).get(timeout=DEADLINE)


def test_retry_state_while_the_retry_waits(stack_factory: Any,  # noqa: F811
                                           client_for: Any) -> None:
    stack: Stack = stack_factory(define(threading.Event()), result_backend="memory://")
    client = client_for(stack.app)
    task_id = client.post("/jobs/proj.retry", json={}).json()["task_id"]
    assert "upstream" in poll(client, task_id, "RETRY")["result"]
    assert not AsyncResult(task_id, app=stack.app).ready()


def test_ignore_result_and_expiry(stack_factory: Any, client_for: Any) -> None:  # noqa: F811
    now = [time.time()]
    stack: Stack = stack_factory(define(threading.Event()), result_expires=60)
    stack.app.backend = MemoryStore(clock=lambda: now[0])
    client = client_for(stack.app)
    quiet = client.post("/jobs/proj.quiet", json={}).json()["task_id"]
    stack.ran.wait_for(1)
    failed = client.post("/jobs/proj.fail", json={"sku": "A"}).json()["task_id"]
    poll(client, failed, "FAILURE")
    assert client.get(f"/jobs/{quiet}").json()["state"] == "PENDING"  # ignored
    now[0] += 61  # past result_expires on the store's clock
    assert client.get(f"/jobs/{failed}").json()["state"] == "PENDING"
