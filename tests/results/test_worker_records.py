"""What a worker run records beyond its state, as Celery users read it: app -> official client
-> emulator -> HTTP -> served worker, with the memory store.

* ``AsyncResult.children``: the tasks a run sent (Celery's ``trail``), not its own retry;
* a task revoked through a handle that cannot delete it (``AsyncResult(id).revoke()`` in
  another process, or a retry) is skipped when delivered, and a chord with such a member
  fails; a delivery past its ``expires`` is stored as REVOKED;
* a per-call ``apply_async(ignore_result=)`` overrides the task's, for its retries too;
* ``await self.aupdate_state()`` writes progress without blocking the event loop;
* a finished run keeps its runtime (what Flower shows; the dashboard reads it).
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from celery_gcp import Celery, chord, signals
from celery_gcp.exceptions import ChordError, TaskRevokedError

from ..calls import Calls
from ..shared_emulator import SharedEmulator
from .test_replace import PARENT, served

QUEUE = f"{PARENT}/queues/celery"


def more_tasks(app: Celery, calls: Calls) -> None:
    """The tasks these tests add to test_replace's."""
    add, double = app.tasks["proj.add"], app.tasks["proj.double"]

    @app.task(name="proj.fan", bind=True, max_retries=1, default_retry_delay=0)
    def fan(self: Any, n: int) -> str:
        if self.request.retries == 0:
            raise self.retry()  # its own retry (same id) is no child
        for i in range(n):
            add.delay(i, i)
        double.apply_async((n,), countdown=0)
        return "sent"

    @app.task(name="proj.later", bind=True, max_retries=3)
    def later(self: Any) -> str:
        calls.record("later", self.request.retries)
        if self.request.retries == 0:
            raise self.retry(countdown=3600)  # the retry waits an hour in its queue
        return "ran again"

    @app.task(name="proj.quiet", ignore_result=True)
    def quiet(x: int) -> int:
        return x

    @app.task(name="proj.retry_once", bind=True, max_retries=1, default_retry_delay=0)
    def retry_once(self: Any, x: int) -> int:
        calls.record("retry_once", self.request.retries)
        if self.request.retries == 0:
            raise self.retry()
        return x

    @app.task(name="proj.slow")
    def slow() -> str:
        time.sleep(0.05)  # the body's own duration, which the record must cover
        return "slept"

    @app.task(name="proj.slow_failure")
    def slow_failure() -> None:
        time.sleep(0.05)
        raise ValueError("late")

    gate = threading.Event()
    app.conf.test_gate = gate

    @app.task(name="proj.progress", bind=True)
    async def progress(self: Any, n: int) -> int:
        for i in range(n):
            await self.aupdate_state(state="PROGRESS", meta={"done": i + 1, "of": n})
        calls.record("progress", n)
        await asyncio.to_thread(gate.wait, 60)
        return n


def test_a_run_records_the_tasks_it_sent_as_its_children(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch, more=more_tasks) as (app, _calls, _emu):
        result = app.tasks["proj.fan"].delay(2)
        assert result.get(timeout=60) == "sent"
        children = app.AsyncResult(result.id).children
        assert len(children) == 3  # two adds and a double; the fan's own retry is not one
        assert sorted(child.get(timeout=60) for child in children) == [0, 2, 4]
        collected = [value for _, value in app.AsyncResult(result.id).collect(timeout=60)]
    assert collected[0] == "sent"
    assert sorted(collected[1:]) == [0, 2, 4]


def test_a_finished_run_records_its_runtime(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch, more=more_tasks) as (app, _calls, _emu):
        ok = app.tasks["proj.slow"].delay()
        failed = app.tasks["proj.slow_failure"].delay()
        assert ok.get(timeout=60) == "slept"
        with pytest.raises(ValueError):
            failed.get(timeout=60)
        store = app.backend
        assert store is not None
        metas = [store.get_meta(ok.id), store.get_meta(failed.id)]
    for meta in metas:
        assert meta is not None
        assert 0.05 <= meta["runtime"] < 30


def test_a_task_revoked_by_id_alone_is_skipped_when_delivered(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def revoked(sender: Any, request: Any, signal: Any = None, **kwargs: Any) -> None:
        seen.append({"id": request.id, **kwargs})

    signals.task_revoked.connect(revoked)
    try:
        with served(module_emulator, monkeypatch, more=more_tasks) as (app, calls, emu):
            sent = app.tasks["proj.add"].apply_async((1, 2), countdown=3600)
            # Another process knows only the id: the Cloud Tasks task cannot be deleted.
            assert app.AsyncResult(sent.id).revoke() is False
            client = emu.tasks_client()
            (task,) = client.list_tasks(parent=QUEUE)
            client.run_task(name=task.name)  # delivered now, as if its countdown had passed
            emu.wait_idle()
            assert list(client.list_tasks(parent=QUEUE)) == []  # answered 200: done
            state = app.AsyncResult(sent.id).state
            with pytest.raises(TaskRevokedError):
                app.AsyncResult(sent.id).get(timeout=10)
    finally:
        signals.task_revoked.disconnect(revoked)
    assert [name for name, _ in calls.calls] == []  # proj.add never ran
    assert state == "REVOKED"
    assert seen == [{"id": sent.id, "terminated": False, "signum": None, "expired": False}]


def test_a_retry_waiting_in_its_queue_is_skipped_once_revoked(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch, more=more_tasks) as (app, calls, emu):
        result = app.tasks["proj.later"].delay()
        calls.wait_for(1, timeout=60)
        emu.wait_idle()
        assert result.state == "RETRY"
        assert result.revoke() is False  # the handle names the first task, not its retry
        client = emu.tasks_client()
        (retry,) = client.list_tasks(parent=QUEUE)
        assert retry.name.endswith(f"{result.id}-r1")
        client.run_task(name=retry.name)
        emu.wait_idle()
        assert result.state == "REVOKED"
    assert calls.calls == [("later", 0)]  # the retry did not run


def test_a_chord_whose_member_is_revoked_fails_with_chord_error(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch, more=more_tasks) as (app, calls, emu):
        add, record = app.tasks["proj.add"], app.tasks["proj.record"]
        result = chord([add.s(1, 1), add.s(2, 2).set(countdown=3600)], record.s(),
                       app=app).apply_async()
        calls.wait_for(1, timeout=60)  # the first member ran
        emu.wait_idle()
        client = emu.tasks_client()
        (waiting,) = client.list_tasks(parent=QUEUE)
        member_id = waiting.name.rsplit("/", 1)[1]
        app.AsyncResult(member_id).revoke()
        client.run_task(name=waiting.name)
        with pytest.raises(ChordError, match=member_id):
            result.get(timeout=60, follow_parents=False)  # the body's own outcome
        with pytest.raises(TaskRevokedError):  # as Celery's get(): the parent's, first
            result.get(timeout=60)
    assert [name for name, _ in calls.calls] == ["add"]  # neither the member nor the body


def test_a_delivery_past_its_expiry_is_stored_as_revoked(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch, more=more_tasks) as (app, calls, emu):
        sent = app.tasks["proj.add"].apply_async(
            (1, 2), expires=datetime.now(UTC) - timedelta(seconds=1))
        emu.wait_idle()
        with pytest.raises(TaskRevokedError, match="expired"):
            sent.get(timeout=10)
    assert calls.calls == []


def test_a_per_call_ignore_result_overrides_the_tasks_for_the_run_and_its_retries(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch, more=more_tasks) as (app, calls, emu):
        ignored = app.tasks["proj.retry_once"].apply_async((7,), ignore_result=True)
        kept = app.tasks["proj.quiet"].apply_async((8,), ignore_result=False)
        assert kept.get(timeout=60) == 8  # the task ignores results; this call keeps them
        quiet = app.tasks["proj.quiet"].delay(9)
        emu.wait_idle()
        assert quiet.state == "PENDING"  # the task's own ignore_result=True
        calls.wait_for(2, timeout=60)
        emu.wait_idle()
        # The first run retried, the retry succeeded, both with the call's
        # ignore_result=True: nothing was stored (a retry is not an error worth keeping).
        assert ignored.state == "PENDING"
    assert calls.calls == [("retry_once", 0), ("retry_once", 1)]


def test_aupdate_state_records_progress_without_blocking_the_event_loop(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every write of an async task goes through the store's async twin (which a store that
    # waits on I/O makes wait without blocking the loop), never its blocking call.
    writes: list[tuple[str, str]] = []
    with served(module_emulator, monkeypatch, more=more_tasks) as (app, calls, _emu):
        store = app.backend
        set_meta, aset_meta = store.set_meta, store.aset_meta

        def watched(task_id: str, meta: Any, expires: Any) -> None:
            writes.append((meta["status"], "sync"))
            set_meta(task_id, meta, expires)

        async def awatched(task_id: str, meta: Any, expires: Any) -> None:
            writes.append((meta["status"], "async"))
            await aset_meta(task_id, meta, expires)

        monkeypatch.setattr(store, "aset_meta", awatched)
        monkeypatch.setattr(store, "set_meta", watched)
        try:
            result = app.tasks["proj.progress"].delay(3)
            calls.wait_for(1, timeout=60)
            assert result.state == "PROGRESS"
            assert result.info == {"done": 3, "of": 3}
        finally:
            app.conf.test_gate.set()
        assert result.get(timeout=60) == 3
    # (the memory store's async twin writes its dict at once: "sync" follows each "async")
    assert [status for status, how in writes if how == "async"] == ["PROGRESS"] * 3 + [
        "SUCCESS"]
    assert all(writes[i - 1] == (status, "async")
               for i, (status, how) in enumerate(writes) if how == "sync")
