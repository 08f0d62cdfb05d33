"""``self.replace(sig)`` as Celery users call it: app -> official client -> emulator -> HTTP
-> served worker, with the memory store; and eagerly.

The replacement takes the replaced task's id (its result is the replaced task's), its
callbacks, its place in a chain and in a chord header; a group gives the list of its
results; a redelivered replaced task sends its replacement once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI

from celery_gcp import Celery, chain, chord, group
from celery_gcp.exceptions import NoResultBackendError
from celery_gcp.testing import serve

from ..calls import Calls
from ..shared_emulator import SharedEmulator
from .test_chords_emulator import redelivered_once

PARENT = "projects/p/locations/l"


def define(app: Celery, calls: Calls) -> None:
    """proj.add, proj.double, proj.record, and the replacing tasks, on ``app``."""

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        calls.record("add", x + y)
        return x + y

    @app.task(name="proj.double")
    def double(x: int) -> int:
        calls.record("double", x)
        return 2 * x

    @app.task(name="proj.record")
    def record(value: Any) -> None:
        calls.record("record", value)

    @app.task(name="proj.by_add", bind=True)
    def by_add(self: Any, x: int) -> Any:
        calls.record("by_add", self.request.id)
        return self.replace(add.s(x, 100))

    @app.task(name="proj.by_chain", bind=True)
    def by_chain(self: Any, x: int) -> Any:
        return self.replace(chain(add.s(x, 1), double.s()))

    @app.task(name="proj.by_group", bind=True)
    def by_group(self: Any, n: int) -> Any:
        return self.replace(group(double.s(i) for i in range(n)))

    @app.task(name="proj.twice", bind=True)
    def twice(self: Any, x: int) -> Any:  # replaced by a task that replaces itself
        return self.replace(by_add.s(x))


@contextmanager
def served(module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch,
           redeliver: set[str] | None = None, more: Callable[[Celery, Calls], None] | None = None,
           ) -> Iterator[tuple[Celery, Calls, Any]]:
    """An app with the memory store (its tasks: :func:`define`, and ``more``'s), its worker
    served behind the emulator; the emulator."""
    emu = module_emulator.begin(None)
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", emu.address)
    app = Celery("proj", gcp_project="p", gcp_location="l", result_backend="memory://")
    calls = Calls()
    define(app, calls)
    if more is not None:
        more(app, calls)
    api = FastAPI()
    api.include_router(app.router)
    target: Any = api if redeliver is None else redelivered_once(api, redeliver)
    try:
        with serve(target) as url:
            app.conf.task_base_url = url
            emu.tasks_client().create_queue(
                parent=PARENT, queue={"name": f"{PARENT}/queues/celery"})
            yield app, calls, emu
            emu.wait_idle()
    finally:
        module_emulator.reset()


def test_the_replacement_answers_for_the_replaced_tasks_id(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch) as (app, calls, emu):
        record = app.tasks["proj.record"]
        result = app.tasks["proj.by_add"].apply_async((5,), link=record.s())
        assert result.get(timeout=60) == 105
        calls.wait_for(3, timeout=60)  # by_add, add, then the replaced task's callback
        emu.wait_idle()
        names = sorted(t.name.rsplit("/", 1)[1] for t in emu.tasks_client().list_tasks(
            parent=f"{PARENT}/queues/celery"))
    assert [name for name, _ in calls.calls] == ["by_add", "add", "record"]
    assert calls.calls[0][1] == result.id
    assert calls.calls[2][1] == 105  # the callback got the replacement's result, once
    assert names == []  # every task ran and was done


def test_a_replaced_chain_step_hands_its_place_to_the_replacement(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch) as (app, _calls, _):
        steps = chain(app.tasks["proj.add"].s(1, 1), app.tasks["proj.by_chain"].s(),
                      app.tasks["proj.double"].s(), app=app)
        result = steps.apply_async()
        # 1 + 1 = 2 -> replaced by (2 + 1) * 2 = 6 -> double: 12
        assert result.get(timeout=60) == 12
        assert result.parent.get(timeout=60) == 6  # the replaced step's id holds its result


def test_a_group_replacement_gives_the_list_of_its_results(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch) as (app, _, _emu):
        result = app.tasks["proj.by_group"].delay(4)
        assert result.get(timeout=60) == [0, 2, 4, 6]


def test_a_replaced_chord_member_counts_once_its_replacement_is_done(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch) as (app, calls, _):
        header = [app.tasks["proj.double"].s(1), app.tasks["proj.by_add"].s(2),
                  app.tasks["proj.double"].s(3)]
        result = chord(header, app.tasks["proj.record"].s(), app=app).apply_async()
        result.get(timeout=60)
    assert [v for name, v in calls.calls if name == "record"] == [[2, 102, 6]]


def test_a_replacement_of_a_replacement_keeps_the_first_id(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch) as (app, calls, _):
        result = app.tasks["proj.twice"].delay(7)
        assert result.get(timeout=60) == 107
    assert [v for name, v in calls.calls if name == "by_add"] == [result.id]


def test_a_redelivered_replaced_task_sends_its_replacement_once(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    task_id = "replaced-once"
    with served(module_emulator, monkeypatch, redeliver={task_id}) as (app, calls, emu):
        result = app.tasks["proj.by_add"].apply_async((1,), task_id=task_id)
        assert result.get(timeout=60) == 101
        calls.wait_for(3, timeout=60)  # by_add twice (the 503 made it run again), add once
        emu.wait_idle()
    assert sorted(name for name, _ in calls.calls) == ["add", "by_add", "by_add"]


def test_eagerly_the_replacement_runs_here_and_its_result_is_returned() -> None:
    app = Celery("proj", task_always_eager=True)
    calls = Calls()
    define(app, calls)
    assert app.tasks["proj.by_add"].delay(1).get() == 101
    assert app.tasks["proj.by_chain"].delay(1).get() == 4
    assert app.tasks["proj.by_group"].delay(3).get() == [0, 2, 4]


def test_replace_outside_a_run_and_a_group_without_a_store_are_refused(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    app = Celery("proj")
    calls = Calls()
    define(app, calls)
    with pytest.raises(RuntimeError, match=r"outside a run of the task"):
        app.tasks["proj.by_add"].replace(app.tasks["proj.add"].s(1, 2))
    # A group replacement is a chord: without a store the replaced run fails, loudly.
    emu = module_emulator.begin(None)
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", emu.address)
    app.conf.update(gcp_project="p", gcp_location="l")
    errors: list[BaseException] = []
    done = threading.Event()

    @app.task(name="proj.no_store", bind=True)
    def no_store(self: Any) -> Any:
        try:
            return self.replace(group(app.tasks["proj.double"].s(1)))
        except NoResultBackendError as exc:
            errors.append(exc)
            raise
        finally:
            done.set()

    api = FastAPI()
    api.include_router(app.router)
    try:
        with serve(api) as url:
            app.conf.task_base_url = url
            emu.tasks_client().create_queue(
                parent=PARENT, queue={"name": f"{PARENT}/queues/celery"})
            no_store.delay()
            assert done.wait(60)
            emu.wait_idle()
    finally:
        module_emulator.reset()
    assert len(errors) == 1
    assert "result store" in str(errors[0])
