"""Chords: refused without a store, eager as Celery's, and through a served worker over HTTP
with the memory store (through the app's result layer).

The same chords under faults, through the emulator: test_chords_emulator.py.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import celery
import pytest

from celery_gcp import Celery, chain, chord, group, signature
from celery_gcp.exceptions import ChordError, MessageDecodeError, NoResultBackendError
from celery_gcp.message import Message
from celery_gcp.result import GroupResult
from celery_gcp.results import MemoryStore
from celery_gcp.results.chords import CHORD_HEADER, part_done

from ..conftest import Worker
from .chord_layer import with_store

WorkerFactory = Callable[[Celery], AbstractContextManager[Worker]]


def define(app: Any) -> list[tuple[str, Any]]:
    """proj.add, proj.tsum, proj.fail, proj.on_error, proj.on_error_request on ``app``
    (celery_gcp's or Celery's); what ran, in order."""
    calls: list[tuple[str, Any]] = []
    # Celery's tasks are shared with every Celery app by default: not these.
    task = app.task if isinstance(app, Celery) else functools.partial(app.task, shared=False)

    @task(name="proj.add")
    def add(x: int, y: int) -> int:
        calls.append(("add", x + y))
        return x + y

    @task(name="proj.tsum")
    def tsum(values: list[int], extra: int = 0) -> int:
        calls.append(("tsum", list(values)))
        return sum(values) + extra

    @task(name="proj.fail")
    def fail(x: int) -> int:
        calls.append(("fail", x))
        raise ValueError("boom")

    @task(name="proj.on_error")
    def on_error(task_id: str) -> None:
        calls.append(("on_error", task_id))

    @task(name="proj.on_error_request")
    def on_error_request(request: Any, exc: Any, traceback: Any) -> None:
        calls.append(("on_error_request", (request.id, type(exc).__name__, str(exc))))

    return calls


def headers_of(message: Message) -> dict[str, Any]:
    description: dict[str, Any] = message.headers[CHORD_HEADER]
    return description


# -- without a store --------------------------------------------------------------------------


def test_a_chord_without_a_store_is_refused_where_it_is_sent(app: Celery,
                                                              sent: list[Any]) -> None:
    define(app)
    add, tsum = app.tasks["proj.add"], app.tasks["proj.tsum"]
    header = group(add.s(1, 1), add.s(2, 2))
    calls = [lambda: chord(header)(tsum.s()), lambda: chord(header, tsum.s()).apply_async(),
             lambda: (header | tsum.s()).delay(), lambda: chain(header, tsum.s()).delay(),
             lambda: chain(add.s(1, 1), header, tsum.s()).delay(),
             lambda: add.apply_async((1, 1), link=chord([add.s(1)], tsum.s()))]
    for call in calls:
        with pytest.raises(NoResultBackendError, match=r"(?s)is a chord.*Set result_backend"):
            call()
    assert sent == []
    assert isinstance(header | tsum.s(), chord)  # building one needs no store


# -- eager: as Celery's -------------------------------------------------------------------------


def run_eager_chords(app: Any, chord_type: Any, group_type: Any, chain_type: Any,
                     ) -> tuple[list[Any], list[tuple[str, Any]]]:
    calls = define(app)
    add, tsum = app.tasks["proj.add"], app.tasks["proj.tsum"]
    results = [
        chord_type([add.s(1, 1), add.s(2, 2)])(tsum.s()).get(),
        chord_type([add.s(i, i) for i in range(5)], tsum.s(extra=100)).apply_async().get(),
        (group_type(add.s(1, 1), add.s(2, 2)) | tsum.s()).delay().get(),
        chain_type(add.s(1, 1), group_type(add.s(10), add.s(20)), tsum.s()).delay().get(),
        chord_type([add.s(1, 1), add.s(2, 2)], tsum.s()).apply().get(),
    ]
    return results, calls


def test_eager_chords_run_as_celerys() -> None:
    ours = Celery("proj", broker_url="memory://", task_always_eager=True)
    theirs = celery.Celery("proj", set_as_current=False)
    theirs.conf.task_always_eager = True
    try:
        expected = run_eager_chords(theirs, celery.chord, celery.group, celery.chain)
        assert run_eager_chords(ours, chord, group, chain) == expected
        assert expected[0] == [6, 120, 6, 34, 6]
    finally:
        ours.close()


def test_an_eager_chord_whose_member_fails_raises_its_error(app: Celery) -> None:
    app.conf.task_always_eager = True
    define(app)
    add, fail, tsum = app.tasks["proj.add"], app.tasks["proj.fail"], app.tasks["proj.tsum"]
    with pytest.raises(ValueError, match="boom"):
        chord([add.s(1, 1), fail.s(2)])(tsum.s())


# -- through a served worker ----------------------------------------------------------------


def test_a_chord_runs_its_body_once_with_the_results_in_order(
        app: Celery, sent: list[Any], worker: WorkerFactory) -> None:
    calls = define(app)
    store = with_store(app)
    add, tsum = app.tasks["proj.add"], app.tasks["proj.tsum"]
    result = chord([add.s(i, i) for i in range(6)])(tsum.s(extra=1))
    header = result.parent
    assert isinstance(header, GroupResult)
    assert store.restore_group(str(header.id)) == [r.id for r in header.results]
    messages = list(sent)
    assert [m.id for m in messages] == [r.id for r in header.results]
    for index, message in enumerate(messages):
        description = headers_of(message)
        assert (description["id"], description["index"], description["size"]) == (
            header.id, index, 6)
        assert description["body"]["options"]["task_id"] == result.id
    with worker(app) as w:
        w.deliver_sent()
    assert calls[-1] == ("tsum", [0, 2, 4, 6, 8, 10])
    assert [name for name, _ in calls].count("tsum") == 1
    assert store.get_meta(result.id)["result"] == 31  # type: ignore[index]


def test_header_members_know_their_group_index_and_chord(app: Celery, sent: list[Any],
                                                   worker: WorkerFactory) -> None:
    with_store(app)
    seen: dict[str, tuple[str | None, int | None]] = {}
    bodies: dict[str, Any] = {}

    @app.task(bind=True, name="proj.where")
    def where(self: Any, label: str) -> str:
        seen[label] = (self.request.group, self.request.group_index)
        bodies[label] = self.request.chord
        return label

    @app.task(name="proj.collect")
    def collect(labels: list[str]) -> list[str]:
        return labels

    # As in Celery: the members of a chord's header are a group's, the body is not.
    result = chord([where.s("a"), chain(where.si("b1"), where.si("b2")), where.s("c")])(
        collect.s())
    with worker(app) as w:
        w.deliver_sent()
    header_id = result.parent.id
    assert seen == {"a": (header_id, 0), "b1": (None, None), "b2": (header_id, 1),
                    "c": (header_id, 2)}
    assert result.get(timeout=1) == ["a", "b2", "c"]
    # request.chord is the body's signature, as Celery's (for the members that count).
    assert {label: body and body["task"] for label, body in bodies.items()} == {
        "a": "proj.collect", "b1": None, "b2": "proj.collect", "c": "proj.collect"}
    assert bodies["a"]["options"]["task_id"] == result.id


def test_a_redelivered_member_is_counted_once(app: Celery, sent: list[Any],
                                               worker: WorkerFactory) -> None:
    calls = define(app)
    store = with_store(app)
    add, tsum = app.tasks["proj.add"], app.tasks["proj.tsum"]
    result = chord([add.s(1, 1), add.s(2, 2), add.s(3, 3)])(tsum.s())
    first, second, third = app.transport.pop()  # type: ignore[attr-defined]
    with worker(app) as w:
        for message in (first, first, second, second):  # each delivered twice
            assert w.deliver(message).status_code == 200
        assert app.transport.sent == []  # type: ignore[attr-defined]  # two of three: no body
        w.deliver(third)
        w.deliver(third)  # the completing member, redelivered: the same named body again
        bodies = app.transport.pop()  # type: ignore[attr-defined]
        # The memory transport keeps both sends; Cloud Tasks creates one task of one name
        # (test_chords_emulator.py).
        assert {m.id for m in bodies} == {result.id}
        w.deliver(bodies[0])
    assert store.chord_part_done(str(result.parent.id), 0, None) == 3
    assert calls[-1] == ("tsum", [2, 4, 6])


def test_a_failing_member_fails_the_chord(app: Celery, sent: list[Any],
                                          worker: WorkerFactory) -> None:
    calls = define(app)
    store = with_store(app)
    t = app.tasks
    body = t["proj.tsum"].s()
    body.link_error(t["proj.on_error"].s())
    body.link_error(t["proj.on_error_request"].s())
    result = chord([t["proj.add"].s(1, 1), t["proj.fail"].s(2), t["proj.add"].s(3, 3)])(body)
    failing_id = result.parent.results[1].id
    with worker(app) as w:
        w.deliver_sent()
    assert "tsum" not in [name for name, _ in calls]
    assert ("on_error", result.id) in calls
    [(_, request)] = [c for c in calls if c[0] == "on_error_request"]
    assert request[:2] == (result.id, "ChordError")
    assert failing_id in request[2]
    assert "ValueError('boom')" in request[2]
    meta = store.get_meta(result.id)
    assert meta is not None
    assert meta["status"] == "FAILURE"
    assert meta["result"]["exc_type"] == ChordError.__name__
    # the failure is reported once, even if the completing member is redelivered
    part_done(app, store, app.tasks["proj.add"]._message((3, 3), None, None, None, None, {
        "headers": {CHORD_HEADER: headers_of_last(result)}}), "SUCCESS", 6)
    assert [name for name, _ in calls].count("on_error") == 1


def headers_of_last(result: Any) -> dict[str, Any]:
    ids = [r.id for r in result.parent.results]
    return {"id": result.parent.id, "index": len(ids) - 1, "size": len(ids), "task_ids": ids,
            "body": {"task": "proj.tsum", "args": [], "kwargs": {},
                     "options": {"task_id": result.id,
                                 "link_error": [{"task": "proj.on_error", "args": [],
                                                 "kwargs": {}, "options": {},
                                                 "subtask_type": None, "immutable": False}]},
                     "subtask_type": None, "immutable": False}}


def test_a_chord_inside_a_chain_gets_the_step_before_and_feeds_the_step_after(
        app: Celery, sent: list[Any], worker: WorkerFactory) -> None:
    calls = define(app)
    store = with_store(app)
    t = app.tasks
    result = chain(t["proj.add"].s(1, 1), group(t["proj.add"].s(10), t["proj.add"].s(20)),
                   t["proj.tsum"].s(), t["proj.add"].s(1000)).delay()
    with worker(app) as w:
        w.deliver_sent()
    assert calls == [("add", 2), ("add", 12), ("add", 22), ("tsum", [12, 22]), ("add", 1034)]
    assert store.get_meta(result.id)["result"] == 1034  # type: ignore[index]


def test_a_chord_travels_as_a_dict_and_is_rebuilt(app: Celery) -> None:
    app.backend = MemoryStore()
    define(app)
    add, tsum = app.tasks["proj.add"], app.tasks["proj.tsum"]
    original = chord([add.s(1, 1), chain(add.s(2, 2), add.s(1))], tsum.s(), app=app)
    rebuilt = signature(json.loads(json.dumps(original)), app=app)
    assert isinstance(rebuilt, chord)
    assert rebuilt == original
    assert isinstance(rebuilt.tasks[1], chain)
    assert rebuilt.body == tsum.s()


def test_part_done_leaves_other_messages_alone_and_refuses_a_malformed_header(
        app: Celery) -> None:
    define(app)
    store = MemoryStore()
    add = app.tasks["proj.add"]
    part_done(app, store, add._message((1, 1), None, None, None, None, {}), "SUCCESS", 2)
    bad = add._message((1, 1), None, None, None, None, {"headers": {CHORD_HEADER: {"id": 1}}})
    with pytest.raises(MessageDecodeError, match="not a chord description"):
        part_done(app, store, bad, "SUCCESS", 2)
