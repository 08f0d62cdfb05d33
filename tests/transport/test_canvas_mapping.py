"""``task.map``, ``task.starmap`` and ``task.chunks``: Celery's dict forms, eagerly as Celery
runs them, and through the emulator into a served worker (the built-in ``celery.map`` /
``celery.starmap`` tasks are endpoints like any task)."""

from __future__ import annotations

from typing import Any

import celery  # type: ignore[import-untyped]
import pytest

from celery_gcp import Celery, Signature, signature
from celery_gcp.canvas import chunks, xmap, xstarmap

from .conftest import Ran, Stack


def add(x: int, y: int) -> int:
    return x + y


def double(x: int) -> int:
    return 2 * x


def _eager_apps() -> tuple[Celery, Any]:
    ours = Celery("p", task_always_eager=True)
    theirs = celery.Celery("p", set_as_current=False, task_always_eager=True)
    for fn in (add, double):
        ours.task(name=f"p.{fn.__name__}")(fn)
        theirs.task(name=f"p.{fn.__name__}", shared=False)(fn)
    return ours, theirs


def _eager_pair() -> tuple[Any, Any]:
    ours, theirs = _eager_apps()
    return ours.tasks["p.add"], theirs.tasks["p.add"]


@pytest.mark.parametrize("make", [
    lambda add: add.starmap([(1, 1), (2, 3)]),
    lambda add: add.chunks(zip(range(7), range(7), strict=True), 3),
])
def test_map_starmap_chunks_run_eagerly_as_celery(make: Any) -> None:
    ours, theirs = _eager_pair()
    assert make(ours).apply_async().get() == make(theirs).apply_async().get()


def test_map_runs_eagerly_as_celery() -> None:
    ours, theirs = _eager_apps()
    assert ours.tasks["p.double"].map([1, 2, 3]).delay().get() == \
        theirs.tasks["p.double"].map([1, 2, 3]).delay().get() == [2, 4, 6]


def test_map_starmap_chunks_travel_as_dicts_and_are_rebuilt() -> None:
    ours, theirs = _eager_pair()
    for made in (ours.map([1]), ours.starmap([(1, 2)]), ours.chunks([(1, 2), (3, 4)], 1)):
        rebuilt = Signature.from_dict(dict(made))
        assert type(rebuilt) is type(made)
        assert dict(rebuilt) == dict(made)
    assert isinstance(signature(dict(ours.map([1]))), xmap)
    assert isinstance(signature(dict(ours.starmap([]))), xstarmap)
    # Celery's own dicts: a plain signature of the built-in task, which runs the same.
    celerys = dict(theirs.starmap([(1, 2)]))
    celerys["kwargs"] = {"task": dict(celerys["kwargs"]["task"]), "it": [[1, 2]]}
    assert signature(celerys, app=ours.app).apply().get() == [3]
    with pytest.raises(ValueError, match="n must be at least 1"):
        chunks(ours.s(), [(1, 2)], 0)


def _tasks(app: Celery, ran: Ran) -> None:
    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        ran.record("add", (x, y))
        return x + y

    @app.task(name="proj.collect")
    def collect(values: list[int]) -> None:
        ran.record("collect", values)


def test_starmap_runs_through_the_worker(stack_factory: Any) -> None:
    stack: Stack = stack_factory(_tasks)
    add, collect = stack.app.tasks["proj.add"], stack.app.tasks["proj.collect"]
    add.starmap([(1, 1), (2, 3)]).apply_async(link=collect.s())
    calls = stack.ran.wait_for(3)
    assert calls == [("add", (1, 1)), ("add", (2, 3)), ("collect", [2, 5])]


def test_chunks_send_one_task_per_part_through_the_worker(stack_factory: Any) -> None:
    stack: Stack = stack_factory(_tasks)
    add = stack.app.tasks["proj.add"]
    result = add.chunks(zip(range(5), range(5), strict=True), 2)()
    assert len(result.results) == 3  # three parts: 2 + 2 + 1 additions
    calls = stack.ran.wait_for(5)
    assert sorted(value for _, value in calls) == [(i, i) for i in range(5)]
    stack.emu.wait_idle()
    assert len(stack.ran.calls) == 5  # every part ran once
