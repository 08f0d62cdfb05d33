"""Canvas: what chains and groups carry, how they are rebuilt, and how they run here.

The same workflows run through the emulator and a served worker in
tests/transport/test_canvas_cloudtasks.py.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import celery
import pytest

import celery_gcp
from celery_gcp import Celery, Signature, chain, group, signature
from celery_gcp.canvas import maybe_signature
from celery_gcp.exceptions import NoResultBackendError, TaskArgumentError


def define_tasks(app: Any) -> list[tuple[str, Any]]:
    """Tasks proj.add, proj.record, proj.fail and proj.on_error on ``app`` (celery_gcp's or
    Celery's); what they ran, in order."""
    calls: list[tuple[str, Any]] = []
    # Celery's tasks are shared with every Celery app by default: not these.
    task = app.task if isinstance(app, Celery) else functools.partial(app.task, shared=False)

    @task(name="proj.add")
    def add(x: int, y: int) -> int:
        calls.append(("add", x + y))
        return x + y

    @task(name="proj.record")
    def record(value: int, label: str) -> int:
        calls.append((label, value))
        return value

    @task(name="proj.fail")
    def fail(value: int) -> int:
        calls.append(("fail", value))
        raise ValueError("boom")

    @task(name="proj.on_error")
    def on_error(task_id: str) -> None:
        calls.append(("on_error", task_id))

    return calls


@pytest.fixture
def ran(app: Celery) -> list[tuple[str, Any]]:
    """What the tasks of :func:`define_tasks` ran on ``app``."""
    return define_tasks(app)


@pytest.fixture
def eager(app: Celery, ran: list[tuple[str, Any]]) -> Celery:
    app.conf.task_always_eager = True
    return app


def plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def t(app: Celery, name: str) -> Any:
    return app.tasks[f"proj.{name}"]


# -- what a chain or group carries -----------------------------------------------------------


def test_chain_and_group_dicts_carry_their_members_as_celery_does(
        app: Celery, ran: list[Any]) -> None:
    add = t(app, "add")

    def theirs(*args: Any) -> Any:
        return celery.signature("proj.add", args=args)

    inner = chain(add.s(10), add.s(10))
    inner.link(t(app, "record").s(label="x"))
    inner.link_error(t(app, "on_error").s())
    their_inner = celery.chain(theirs(10), theirs(10))
    their_inner.link(celery.signature("proj.record", kwargs={"label": "x"}))
    their_inner.link_error(celery.signature("proj.on_error"))
    pairs = [
        (chain(add.s(1, 1), add.s(10)), celery.chain(theirs(1, 1), theirs(10))),
        (group(add.s(1, 1), add.s(10)), celery.group(theirs(1, 1), theirs(10))),
        (chain(add.s(1, 1), group(add.s(1), add.s(2))),
         celery.chain(theirs(1, 1), celery.group(theirs(1), theirs(2)))),
        (group(group(add.s(1), add.s(2)), chain(add.s(3, 3), add.s(4))),
         celery.group(celery.group(theirs(1), theirs(2)), celery.chain(theirs(3, 3), theirs(4)))),
        (chain(add.s(1, 1), inner), celery.chain(theirs(1, 1), their_inner)),
    ]
    for ours, celerys in pairs:
        assert plain(ours) == plain(celerys), repr(ours)
    assert plain(chain(add.s(1, 1), add.s(2)))["kwargs"]["tasks"][1]["args"] == [2]


def test_chain_tasks_lists_the_steps(app: Celery, ran: list[Any]) -> None:
    add = t(app, "add")
    first, second = add.s(1, 1), add.s(10)
    assert chain(first, second).tasks == [first, second]
    assert (first | second).tasks == [first, second]
    assert [s.args for s in chain(first, chain(add.s(2), add.s(3))).tasks] == [[1, 1], [2], [3]]
    assert group(first, second).tasks == [first, second]


# -- rebuilding from dicts -------------------------------------------------------------------


def test_from_dict_rebuilds_every_canvas_type(app: Celery, ran: list[Any]) -> None:
    add = t(app, "add")
    workflows = [
        add.s(1, 1),
        chain(add.s(1, 1), add.s(10)),
        group(add.s(1, 1), add.s(10)),
        chain(add.s(1, 1), group(add.s(1), chain(add.s(2), add.s(3)))),
        group(group(add.s(1), add.s(2)), chain(add.s(3, 3), add.s(4))),
    ]
    for workflow in workflows:
        for rebuild in (Signature.from_dict, signature, maybe_signature):
            rebuilt = rebuild(plain(workflow))
            assert type(rebuilt) is type(workflow), (rebuild, workflow)
            assert plain(rebuilt) == plain(workflow)
    nested = signature(plain(workflows[3]))
    assert isinstance(nested, chain)
    assert isinstance(nested.tasks[1], group)
    assert isinstance(nested.tasks[1].tasks[1], chain)
    # Celery's own dicts are read the same way.
    their = celery.chain(celery.signature("proj.add", args=(1, 1)),
                         celery.group(celery.signature("proj.add", args=(2,)),
                                      celery.signature("proj.add", args=(3,))))
    ours = signature(plain(their))
    assert isinstance(ours, chain)
    assert isinstance(ours.tasks[1], group)
    with pytest.raises(TaskArgumentError, match=r"kwargs\['tasks'\]"):
        signature({"task": "celery.chain", "kwargs": {}, "subtask_type": "chain"})
    with pytest.raises(TaskArgumentError, match=r"'map'.*register_type"):
        signature({"task": "celery.map", "kwargs": {}, "subtask_type": "map"})


def test_register_type_makes_from_dict_build_the_registered_class(app: Celery,
                                                                   ran: list[Any]) -> None:
    @Signature.register_type(name="audited")
    class audited(Signature):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self["subtask_type"] = "audited"

    try:
        sig = audited(t(app, "add"), (1, 2))
        rebuilt = signature(plain(sig))
        assert type(rebuilt) is audited
        assert type(rebuilt.clone()) is audited
        assert type(signature(plain(chain(sig, t(app, "add").s(3)))).tasks[0]) is audited
    finally:
        del Signature.TYPES["audited"]


# -- chords without a result store (with one: tests/results/test_chords.py) ------------------


def test_a_group_followed_by_a_step_is_a_chord_refused_when_sent(app: Celery, ran: list[Any],
                                                                  sent: list[Any]) -> None:
    add = t(app, "add")
    header = group(add.s(1, 1), add.s(2, 2))
    for build in (lambda: chain(header, add.s(3)), lambda: header | add.s(3),
                  lambda: chain(add.s(1, 1), header, add.s(3)),
                  lambda: chain(add.s(1, 1), header) | add.s(3)):
        workflow = build()  # built as in Celery; sending it needs a result store
        with pytest.raises(NoResultBackendError, match=r"(?s)is a chord.*Set result_backend"):
            workflow.delay()
    chord = {"task": "celery.chord", "args": [], "kwargs": {"header": [], "body": None},
             "options": {}, "subtask_type": "chord", "immutable": False}
    with pytest.raises(NoResultBackendError, match="chord"):
        signature(chord)
    with pytest.raises(NoResultBackendError, match="chord"):
        add.apply_async((1, 1), link=chord)
    upgraded = {**plain(chain(add.s(1), add.s(2))),
                "kwargs": {"tasks": [plain(header), plain(add.s(3))]}}
    with pytest.raises(NoResultBackendError, match="chord"):
        add.apply_async((1, 1), link=upgraded)
    assert sent == []


# -- links ------------------------------------------------------------------------------------


def test_link_twice_keeps_one_callback(app: Celery, ran: list[Any], sent: list[Any]) -> None:
    sig = t(app, "add").s(1, 1)
    callback = t(app, "record").s(label="once")
    assert sig.link(callback) is callback
    sig.link(t(app, "record").s(label="once"))
    sig.link_error(t(app, "on_error").s())
    sig.link_error(t(app, "on_error").s())
    sig.apply_async()
    assert [s["kwargs"] for s in sent[0].link] == [{"label": "once"}]
    assert [s["task"] for s in sent[0].link_error] == ["proj.on_error"]


def test_link_twice_calls_back_once_eagerly(eager: Celery, ran: list[Any]) -> None:
    sig = t(eager, "add").s(1, 1)
    sig.link(t(eager, "record").s(label="once"))
    sig.link(t(eager, "record").s(label="once"))
    sig.apply_async()
    assert ran == [("add", 2), ("once", 2)]


def test_chain_apply_async_task_id_names_the_last_step(app: Celery, ran: list[Any],
                                                       sent: list[Any]) -> None:
    add = t(app, "add")
    last = chain(add.s(1, 1), add.s(10), add.s(100)).apply_async(task_id="order-7")
    [first] = sent
    assert last.id == "order-7"
    assert first.id != "order-7"
    assert first.link[0]["options"]["link"][0]["options"]["task_id"] == "order-7"
    assert last.parent is not None
    assert last.parent.id == first.link[0]["options"]["task_id"]
    assert last.parent.parent.id == first.id


# -- nested workflows and chain links, eagerly -----------------------------------------------


def test_nested_canvas_runs_every_member_eagerly(eager: Celery, ran: list[Any]) -> None:
    add, record = t(eager, "add"), t(eager, "record")
    add.apply_async((1, 1), link=group(record.s(label="a"), record.s(label="b")))
    add.apply_async((2, 2), link=chain(add.s(10), record.s(label="c")))
    chain(add.s(3, 3), group(record.s(label="d"), record.s(label="e"))).apply_async()
    results = group(group(record.s(1, label="f"), record.s(2, label="g")),
                    chain(add.s(4, 4), record.s(label="h"))).apply_async()
    assert [(n, v) for n, v in ran if n != "add"] == [
        ("a", 2), ("b", 2), ("c", 14), ("d", 6), ("e", 6), ("f", 1), ("g", 2), ("h", 8)]
    assert results.get() == [1, 2, 8]


def test_chain_link_and_link_error_work_eagerly(eager: Celery, ran: list[Any]) -> None:
    add, record = t(eager, "add"), t(eager, "record")
    workflow = chain(add.s(1, 1), add.s(10))
    workflow.link(record.s(label="done"))
    assert workflow.apply_async().get() == 12
    assert ran == [("add", 2), ("add", 12), ("done", 12)]
    ran.clear()
    failing = chain(add.s(1, 1), t(eager, "fail").s(), record.s(label="never"))
    failing.link_error(t(eager, "on_error").s())
    with pytest.raises(ValueError, match="boom"):
        failing.apply_async()
    assert [name for name, _ in ran] == ["add", "fail", "on_error"]


def test_chain_link_and_link_error_travel_on_the_right_steps(app: Celery, ran: list[Any],
                                                              sent: list[Any]) -> None:
    add = t(app, "add")
    workflow = chain(add.s(1, 1), add.s(10), group(add.s(2), add.s(3)))
    workflow.link(t(app, "record").s(label="done"))
    workflow.link_error(t(app, "on_error").s())
    workflow.apply_async()
    [first] = sent
    second = first.link[0]
    last = second["options"]["link"][0]
    assert [s["task"] for s in first.link_error] == ["proj.on_error"]
    assert [s["task"] for s in second["options"]["link_error"]] == ["proj.on_error"]
    assert last["subtask_type"] == "group"
    assert [s["task"] for s in last["options"]["link"]] == ["proj.record"]
    assert [s["task"] for s in last["options"]["link_error"]] == ["proj.on_error"]


def workflows_log(library: Any, app: Any) -> list[tuple[str, Any]]:
    """Run the same workflows eagerly with ``library`` (celery or celery_gcp) on ``app``;
    what ran, in order (an errback's task id as ``"id"``)."""
    calls = define_tasks(app)
    add, record, fail, on_error = (app.tasks[f"proj.{name}"]
                                   for name in ("add", "record", "fail", "on_error"))
    chain, group = library.chain, library.group
    add.apply_async((1, 1), link=group(record.s(label="a"), record.s(label="b")))
    add.apply_async((2, 2), link=chain(add.s(10), record.s(label="c")))
    chain(add.s(3, 3), group(record.s(label="d"), record.s(label="e"))).apply_async()
    group(group(record.s(1, label="f"), record.s(2, label="g")),
          chain(add.s(4, 4), record.s(label="h"))).apply_async()
    linked = chain(add.s(5, 5), add.s(10))
    linked.link(record.s(label="done"))
    calls.append(("last", linked.apply_async(task_id="last-id").id))
    failing = chain(add.s(6, 6), fail.s(), record.s(label="never"))
    failing.link_error(on_error.s())
    with pytest.raises(ValueError, match="boom"):
        failing.apply_async()
    twice = add.s(7, 7)
    twice.link(record.s(label="once"))
    twice.link(record.s(label="once"))
    twice.apply_async()
    return [(name, "id" if name == "on_error" else value) for name, value in calls]


def test_eager_canvas_runs_as_celery_runs_it(app: Celery) -> None:
    theirs = celery.Celery("proj")
    theirs.conf.task_always_eager = True
    app.conf.task_always_eager = True
    assert workflows_log(celery_gcp, app) == workflows_log(celery, theirs)
