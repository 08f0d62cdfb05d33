"""Canvas end to end: app -> official client -> emulator -> HTTP -> served worker, and on.

Nested chains and groups, ``chain.link()`` / ``chain.link_error()``, de-duplicated links and
a chain's ``task_id``: each callback is a Cloud Tasks task the worker creates when a step ends.
"""

from __future__ import annotations

from typing import Any

from celery_gcp import Celery, Task, chain, group

from .conftest import Ran, Stack


def canvas_tasks(app: Celery, ran: Ran) -> None:
    @app.task(name="proj.add", bind=True)
    def add(self: Task[Any, Any], x: int, y: int) -> int:
        ran.record("add", {"sum": x + y, "id": self.request.id})
        return x + y

    @app.task(name="proj.record", bind=True)
    def record(self: Task[Any, Any], value: int, label: str) -> int:
        ran.record(label, {"value": value, "id": self.request.id,
                           "parent": self.request.parent_id})
        return value

    @app.task(name="proj.fail", bind=True)
    def fail(self: Task[Any, Any], value: int) -> int:
        ran.record("fail", {"value": value, "id": self.request.id})
        raise ValueError("boom")

    @app.task(name="proj.on_error")
    def on_error(task_id: str) -> None:
        ran.record("on_error", task_id)

    @app.task(name="proj.where", bind=True)
    def where(self: Task[Any, Any], label: str, retries: int = 0) -> None:
        if self.request.retries < retries:
            raise self.retry(countdown=0)
        ran.record(label, (self.request.group, self.request.group_index))


def ran_when_idle(stack: Stack, count: int) -> list[tuple[str, Any]]:
    """What ran, once ``count`` runs are in and nothing more is queued or in flight."""
    stack.ran.wait_for(count)
    stack.emu.wait_idle()
    return sorted(stack.ran.calls, key=lambda call: (call[0], repr(call[1])))


def labelled(calls: list[tuple[str, Any]]) -> dict[str, Any]:
    """The value each labelled callback was called with."""
    return {name: value["value"] for name, value in calls if name not in ("add", "fail")}


def test_link_group_runs_every_member(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    tasks = stack.app.tasks
    result = tasks["proj.add"].apply_async(
        (1, 1), link=group(tasks["proj.record"].s(label="a"), tasks["proj.record"].s(label="b")))
    calls = ran_when_idle(stack, 3)
    assert labelled(calls) == {"a": 2, "b": 2}
    assert {value["parent"] for name, value in calls if name in ("a", "b")} == {result.id}


def test_link_chain_runs_every_step(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    tasks = stack.app.tasks
    tasks["proj.add"].apply_async(
        (1, 1), link=chain(tasks["proj.add"].s(10), tasks["proj.record"].s(label="end")))
    calls = ran_when_idle(stack, 3)
    assert sorted(value["sum"] for name, value in calls if name == "add") == [2, 12]
    assert labelled(calls) == {"end": 12}


def test_chain_ending_in_a_group_gives_every_member_the_result(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    tasks = stack.app.tasks
    record = tasks["proj.record"]
    results = chain(tasks["proj.add"].s(1, 1),
                    group(record.s(label="a"), record.s(label="b"))).apply_async()
    calls = ran_when_idle(stack, 3)
    assert labelled(calls) == {"a": 2, "b": 2}
    # The group's ids were chosen up front: the result handles name the tasks that ran.
    assert sorted(r.id for r in results) == sorted(v["id"] for n, v in calls if n in ("a", "b"))
    assert results.parent is not None
    assert [v["id"] for n, v in calls if n == "add"] == [results.parent.id]


def test_group_in_a_group_runs_every_member(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    record = stack.app.tasks["proj.record"]
    results = group(group(record.s(1, label="a"), record.s(2, label="b")),
                    record.s(3, label="c"),
                    chain(stack.app.tasks["proj.add"].s(2, 2), record.s(label="d"))
                    ).apply_async()
    calls = ran_when_idle(stack, 5)
    assert labelled(calls) == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert len(results) == 4


def test_group_members_know_their_group_and_index(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    where = stack.app.tasks["proj.where"]
    # As in Celery: a nested group's members count in the outer one, a chain member by its
    # last step (whose result is the member's); a task sent alone is in no group.
    results = group(where.s("a"), group(where.s("b"), where.s("c")),
                    chain(where.si("d1"), where.si("d2"))).apply_async()
    where.delay("alone")
    calls = dict(ran_when_idle(stack, 6))
    assert calls == {"a": (results.id, 0), "b": (results.id, 1), "c": (results.id, 2),
                     "d1": (None, None), "d2": (results.id, 3), "alone": (None, None)}


def test_a_retried_member_stays_in_its_group(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    where = stack.app.tasks["proj.where"]
    results = group(where.s("a"), where.s("b", retries=2)).apply_async()
    calls = dict(ran_when_idle(stack, 2))
    assert calls == {"a": (results.id, 0), "b": (results.id, 1)}


def test_a_group_sent_by_a_chain_step_is_known_to_its_members(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    tasks = stack.app.tasks
    results = chain(tasks["proj.add"].si(1, 1),
                    group(tasks["proj.where"].si("x"), tasks["proj.where"].si("y"))).delay()
    calls = dict(ran_when_idle(stack, 3))
    assert (calls["x"], calls["y"]) == ((results.id, 0), (results.id, 1))


def test_chain_link_calls_back_after_the_last_step_only(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    tasks = stack.app.tasks
    workflow = chain(tasks["proj.add"].s(1, 1), tasks["proj.add"].s(10))
    workflow.link(tasks["proj.record"].s(label="done"))
    last = workflow.apply_async()
    calls = ran_when_idle(stack, 3)
    assert labelled(calls) == {"done": 12}
    assert [v["parent"] for n, v in calls if n == "done"] == [last.id]


def test_chain_link_error_calls_back_for_the_failing_step(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    tasks = stack.app.tasks
    workflow = chain(tasks["proj.add"].s(1, 1), tasks["proj.fail"].s(),
                     tasks["proj.record"].s(label="never"))
    workflow.link_error(tasks["proj.on_error"].s())
    workflow.apply_async()
    calls = ran_when_idle(stack, 3)
    [failed] = [value["id"] for name, value in calls if name == "fail"]
    assert [name for name, _ in calls] == ["add", "fail", "on_error"]
    assert [value for name, value in calls if name == "on_error"] == [failed]


def test_link_twice_calls_back_once(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    tasks = stack.app.tasks
    sig = tasks["proj.add"].s(1, 1)
    sig.link(tasks["proj.record"].s(label="once"))
    sig.link(tasks["proj.record"].s(label="once"))
    failing = tasks["proj.fail"].s(1)
    failing.link_error(tasks["proj.on_error"].s())
    failing.link_error(tasks["proj.on_error"].s())
    sig.apply_async()
    failing.apply_async()
    calls = ran_when_idle(stack, 4)
    assert [name for name, _ in calls] == ["add", "fail", "on_error", "once"]


def test_chain_task_id_names_the_last_step(stack_factory: Any) -> None:
    stack: Stack = stack_factory(canvas_tasks)
    tasks = stack.app.tasks
    last = chain(tasks["proj.add"].s(1, 1), tasks["proj.record"].s(label="end")).apply_async(
        task_id="order-7-last")
    calls = ran_when_idle(stack, 2)
    assert last.id == "order-7-last"
    assert [v["id"] for n, v in calls if n == "end"] == ["order-7-last"]
    assert [v["id"] for n, v in calls if n == "add"] != ["order-7-last"]
