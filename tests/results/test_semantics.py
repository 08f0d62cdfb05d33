"""Celery's result semantics over a MemoryStore: eager runs and a worker served over HTTP."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from celery_gcp import Celery, Task, states
from celery_gcp.exceptions import NoResultBackendError, ResultStoreError, TimeoutError
from celery_gcp.result import AsyncResult, allow_join_result, denied_join_result
from celery_gcp.results import MemoryStore


class InventoryError(Exception):
    """A project's own error: found again by its module, which is imported."""


class Clock:
    """The MemoryStore's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(app: Celery) -> MemoryStore:
    app.backend = MemoryStore()
    assert isinstance(app.backend, MemoryStore)
    return app.backend


def test_success_is_stored_in_celerys_layout(app: Celery, store: MemoryStore,
                                             worker: Any) -> None:
    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    result = add.delay(2, 3)
    assert result.state == states.PENDING
    assert not result.ready()
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert response.status_code == 200
    meta = store.get_meta(result.id)
    assert meta is not None
    assert {"task_id", "status", "result", "traceback", "children", "date_done"} <= meta.keys()
    assert (meta["status"], meta["result"], meta["traceback"]) == ("SUCCESS", 5, None)
    fresh = AsyncResult(result.id, app=app)
    assert fresh.get(timeout=1) == 5
    assert fresh.result == 5
    assert fresh.info == 5
    assert fresh.ready()
    assert fresh.successful()
    assert not fresh.failed()
    assert isinstance(fresh.date_done, datetime)
    # AsyncResult(id) with no app reads the current app's store, as migrated projects do.
    app.set_current()
    assert AsyncResult(result.id).state == "SUCCESS"


def test_failure_is_stored_and_reraised(app: Celery, store: MemoryStore, worker: Any) -> None:
    @app.task(name="proj.reserve")
    def reserve(sku: str) -> None:
        raise InventoryError(f"{sku} is out of stock")

    result = reserve.delay("A-1")
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert response.status_code == 200  # Celery does not redeliver failures
    assert result.state == "FAILURE"
    assert result.failed()
    assert result.ready()
    assert "InventoryError" in (result.traceback or "")
    with pytest.raises(InventoryError, match="A-1 is out of stock"):
        result.get(timeout=1)
    value = result.get(propagate=False)
    assert isinstance(value, InventoryError)
    assert isinstance(result.result, InventoryError)


def test_track_started_is_seen_during_the_run(app: Celery, store: MemoryStore,
                                              worker: Any) -> None:
    seen: list[str] = []
    captured: list[Any] = []

    @app.task(bind=True, name="proj.slow", track_started=True)
    def slow(self: Task[Any, Any]) -> None:
        seen.append(AsyncResult(self.request.id, app=app).state)
        captured.append(AsyncResult(self.request.id, app=app).info)  # Celery's STARTED meta

    @app.task(bind=True, name="proj.untracked")
    def untracked(self: Task[Any, Any]) -> None:
        seen.append(AsyncResult(self.request.id, app=app).state)

    slow.delay()
    untracked.delay()
    with worker(app) as w:
        w.deliver_sent()
    assert seen == ["STARTED", "PENDING"]
    assert captured[0] == {"pid": os.getpid(), "hostname": f"celery@{socket.gethostname()}"}
    app.conf.task_track_started = True  # the setting turns it on for every task
    untracked.delay()
    with worker(app) as w:
        w.deliver_sent()
    assert seen[-1] == "STARTED"


def test_retry_is_stored_then_success(app: Celery, store: MemoryStore, worker: Any) -> None:
    @app.task(bind=True, name="proj.flaky")
    def flaky(self: Task[Any, Any]) -> str:
        if self.request.retries == 0:
            raise self.retry(exc=ConnectionError("upstream down"), countdown=5)
        return "ok"

    result = flaky.delay()
    [message] = app.transport.pop()  # type: ignore[attr-defined]
    with worker(app) as w:
        assert w.deliver(message).status_code == 200
        assert result.state == "RETRY"
        assert not result.ready()
        assert isinstance(result.result, ConnectionError)
        assert "upstream down" in (result.traceback or "")
        w.deliver_sent()  # the retry: same id
    assert result.state == "SUCCESS"
    assert result.get(timeout=1) == "ok"


def test_ignore_result_and_store_errors_even_if_ignored(app: Celery, store: MemoryStore,
                                                        worker: Any) -> None:
    @app.task(name="proj.quiet", ignore_result=True)
    def quiet(fail: bool) -> int:
        if fail:
            raise ValueError("boom")
        return 1

    ok, bad = quiet.delay(False), quiet.delay(True)
    with worker(app) as w:
        w.deliver_sent()
    assert store.get_meta(ok.id) is None
    assert store.get_meta(bad.id) is None
    app.conf.task_store_errors_even_if_ignored = True
    bad = quiet.delay(True)
    with worker(app) as w:
        w.deliver_sent()
    assert bad.state == "FAILURE"
    app.conf.task_ignore_result = True  # the setting, for a task that does not say
    plain = app.task(name="proj.plain")(lambda: 2)
    result = plain.delay()
    with worker(app) as w:
        w.deliver_sent()
    assert store.get_meta(result.id) is None


def test_result_extended(app: Celery, store: MemoryStore, worker: Any) -> None:
    app.conf.result_extended = True

    @app.task(name="proj.mul")
    def mul(x: int, y: int = 1) -> int:
        return x * y

    result = mul.apply_async((3,), {"y": 4}, queue="high")
    with worker(app) as w:
        w.deliver_sent()
    meta = store.get_meta(result.id)
    assert meta is not None
    # The arguments as the worker calls the task (the body binds them by name).
    assert (meta["name"], meta["args"], meta["kwargs"], meta["retries"], meta["queue"]) == (
        "proj.mul", [3, 4], {}, 0, "high")
    assert meta["worker"] == f"celery@{socket.gethostname()}"  # Celery's node name


def test_result_expires_on_the_store_clock(app: Celery) -> None:
    clock = Clock()
    app.backend = MemoryStore(clock=clock)
    app.conf.update(task_always_eager=True, task_store_eager_result=True,
                    result_expires=timedelta(seconds=10))
    add = app.task(name="proj.add")(lambda x, y: x + y)
    result = add.delay(1, 2)
    fresh = AsyncResult(result.id, app=app)
    assert fresh.state == "SUCCESS"
    clock.now += 11
    assert AsyncResult(result.id, app=app).state == "PENDING"
    app.conf.result_expires = None  # no expiry
    kept = add.delay(1, 2)
    clock.now += 10 * 365 * 86400
    assert AsyncResult(kept.id, app=app).state == "SUCCESS"


def test_default_expiry_is_one_day(app: Celery) -> None:
    clock = Clock()
    app.backend = MemoryStore(clock=clock)
    app.conf.update(task_always_eager=True, task_store_eager_result=True)
    result = app.task(name="proj.one")(lambda: 1).delay()
    clock.now += 86400 - 1
    assert AsyncResult(result.id, app=app).state == "SUCCESS"
    clock.now += 2
    assert AsyncResult(result.id, app=app).state == "PENDING"


def test_eager_results_are_stored_only_when_asked(app: Celery, store: MemoryStore) -> None:
    app.conf.task_always_eager = True
    add = app.task(name="proj.add")(lambda x, y: x + y)
    assert store.get_meta(add.delay(1, 1).id) is None
    app.conf.task_store_eager_result = True
    assert AsyncResult(add.delay(1, 1).id, app=app).get(timeout=1) == 2


def test_update_state_custom_state_and_meta(app: Celery, store: MemoryStore,
                                            worker: Any) -> None:
    seen: list[tuple[str, Any]] = []

    @app.task(bind=True, name="proj.import_rows")
    def import_rows(self: Task[Any, Any], total: int) -> int:
        for done in range(1, total + 1):
            self.update_state(state="PROGRESS", meta={"done": done, "total": total})
            progress = AsyncResult(self.request.id, app=app)
            seen.append((progress.state, progress.info))
        return total

    result = import_rows.delay(2)
    with worker(app) as w:
        w.deliver_sent()
    assert seen == [("PROGRESS", {"done": 1, "total": 2}), ("PROGRESS", {"done": 2, "total": 2})]
    assert result.get(timeout=1) == 2
    other = import_rows.update_state(task_id="elsewhere", state="QUEUED", meta={"n": 1})
    assert other is None
    assert AsyncResult("elsewhere", app=app).info == {"n": 1}


def test_a_failed_store_write_is_redelivered_not_lost(app: Celery, worker: Any) -> None:
    class Down(MemoryStore):
        down = True

        def set_meta(self, task_id: str, meta: Mapping[str, Any],
                     expires: float | None) -> None:
            if self.down:  # failure injection: the store is unreachable
                raise ConnectionError("store unreachable")
            super().set_meta(task_id, meta, expires)

    store = app.backend = Down()
    ran: list[int] = []

    @app.task(name="proj.work")
    def work() -> int:
        ran.append(1)
        return 7

    result = work.delay()
    [message] = app.transport.pop()  # type: ignore[attr-defined]
    with worker(app) as w:
        response = w.deliver(message)
        assert response.status_code == 503  # Cloud Tasks delivers it again
        assert result.state == "PENDING"
        store.down = False
        assert w.deliver(message).status_code == 200
    assert result.get(timeout=1) == 7
    assert len(ran) == 2


def test_async_tasks_write_through_the_async_store_api(app: Celery, worker: Any) -> None:
    class Recording(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.threads: list[str] = []

        async def aset_meta(self, task_id: str, meta: Mapping[str, Any],
                            expires: float | None) -> None:
            self.threads.append(threading.current_thread().name)
            await super().aset_meta(task_id, meta, expires)

        def set_meta(self, task_id: str, meta: Mapping[str, Any],
                     expires: float | None) -> None:
            if threading.current_thread() is threading.main_thread():  # pragma: no cover
                raise AssertionError("a store write on the main thread")
            super().set_meta(task_id, meta, expires)

    store = app.backend = Recording()

    @app.task(name="proj.afetch", track_started=True)
    async def afetch(n: int) -> int:
        return n * 2

    result = afetch.delay(21)
    with worker(app) as w:
        w.deliver_sent()
    assert len(store.threads) == 2  # STARTED, SUCCESS: both through aset_meta
    assert result.get(timeout=1) == 42


def test_get_inside_a_task_raises_unless_allowed(app: Celery, store: MemoryStore,
                                                 worker: Any) -> None:
    outcomes: list[Any] = []
    app.conf.task_store_eager_result = True
    inner = app.task(name="proj.inner")(lambda: 3)
    done = inner.apply()

    @app.task(name="proj.outer")
    def outer() -> None:
        try:
            AsyncResult(done.id, app=app).get(timeout=1)
        except RuntimeError as exc:
            outcomes.append(str(exc))
        outcomes.append(AsyncResult(done.id, app=app).get(timeout=1, disable_sync_subtasks=False))
        with allow_join_result():  # Celery's way to say so for a block
            outcomes.append(AsyncResult(done.id, app=app).get(timeout=1))
        try:
            AsyncResult(done.id, app=app).get(timeout=1)
        except RuntimeError:
            outcomes.append("refused again after the block")

    outer.delay()
    with worker(app) as w:
        w.deliver_sent()
    assert "Never call result.get() within a task" in outcomes[0]
    assert "allow_join_result()" in outcomes[0]  # the message names both ways out
    assert outcomes[1:] == [3, 3, "refused again after the block"]
    # Outside a task get() waits, unless denied, as in Celery.
    assert AsyncResult(done.id, app=app).get(timeout=1) == 3
    with denied_join_result(), pytest.raises(RuntimeError, match="Never call"):
        AsyncResult(done.id, app=app).get(timeout=1)


def test_get_times_out(app: Celery, store: MemoryStore) -> None:
    with pytest.raises(TimeoutError, match="timed out"):
        AsyncResult("never-ran", app=app).get(timeout=0.05, interval=0.01)


async def test_aget(app: Celery, store: MemoryStore) -> None:
    app.conf.update(task_always_eager=True, task_store_eager_result=True)
    result = app.task(name="proj.add")(lambda x, y: x + y).delay(4, 4)
    assert await AsyncResult(result.id, app=app).aget(timeout=1) == 8
    with pytest.raises(TimeoutError):
        await AsyncResult("nope", app=app).aget(timeout=0.05, interval=0.01)


def test_without_a_store_nothing_changes(app: Celery) -> None:
    assert app.backend is None
    result = AsyncResult("x", app=app)
    assert result.state == "PENDING"
    assert result.result is None
    with pytest.raises(NoResultBackendError, match="no result store"):
        result.get()
    with pytest.warns(UserWarning, match="update_state"):
        app.task(name="proj.t")(lambda: 1).update_state(task_id="x", state="PROGRESS")


def test_forget_and_revoke(app: Celery, store: MemoryStore) -> None:
    from celery_gcp.exceptions import TaskRevokedError

    app.conf.update(task_always_eager=True, task_store_eager_result=True)
    result = AsyncResult(app.task(name="proj.one")(lambda: 1).delay().id, app=app)
    assert result.state == "SUCCESS"
    result.forget()
    assert result.state == "PENDING"
    pending = AsyncResult("queued-1", app=app)
    pending.revoke()
    assert pending.state == "REVOKED"
    assert pending.ready()
    with pytest.raises(TaskRevokedError):
        pending.get(timeout=1)


def test_store_error_in_eager_call_raises_at_the_call_site(app: Celery) -> None:
    class Down(MemoryStore):
        def set_meta(self, task_id: str, meta: Mapping[str, Any],
                     expires: float | None) -> None:
            raise ConnectionError("store unreachable")  # failure injection

    app.backend = Down()
    app.conf.update(task_always_eager=True, task_store_eager_result=True)
    with pytest.raises(ResultStoreError, match="could not be stored"):
        app.task(name="proj.one")(lambda: 1).delay()
