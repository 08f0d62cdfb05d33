"""Result behaviours where Celery 5 (a real ``celery worker`` on Redis) was found to act
otherwise, checked here on a Redis store with a worker served over real HTTP:

* a failed chain step stores its exception as the FAILURE of the steps after it, so the
  chain's result is ready and ``get()`` raises it (Celery's backends do the same), and a
  chain in a chord's header that fails early still fails the chord;
* the handle of a task sent with its result ignored (the task's ``ignore_result``, the
  call's, ``task_ignore_result``, ``send_task(ignore_result=True)``) knows it: ``get()``
  returns ``None`` at once instead of waiting for a record that never comes;
* an errback taking ``*args`` is new-style, as by Celery's ``arity_greater``: it is called
  in the worker with ``(request, exc, traceback)``, not sent with the failed task's id;
* ``get()`` re-raises a failed parent's exception first (``follow_parents``, root first):
  a chord whose header failed raises the member's error, not the body's ``ChordError``;
* a group sent without ``task_id`` still has an id (Celery's ``GroupResult`` always has
  one), so ``save()`` / ``GroupResult.restore()`` work on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from celery_gcp import Celery, chain, chord, group, states
from celery_gcp.exceptions import ChordError, TimeoutError
from celery_gcp.result import AsyncResult, GroupResult
from celery_gcp.results import ResultStore

from ..calls import Calls
from ..redis_server import RedisServer

#: The Redis database these tests use (other users of the server take others).
REDIS_DB = 5


class InventoryError(Exception):
    """A project's own error: rebuilt from its module, which is imported."""


@pytest.fixture
def redis_store(app: Celery, redis_server: RedisServer) -> Iterator[ResultStore]:
    from celery_gcp.results.redis_store import RedisStore

    redis_server.client(REDIS_DB).flushdb()
    store = RedisStore(redis_server.url(REDIS_DB))
    app.backend = store
    yield store
    store.close()


def define(app: Celery) -> None:
    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="proj.tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    @app.task(name="proj.reserve")
    def reserve(sku: str) -> int:
        raise InventoryError(f"{sku} is out of stock", 7)

    @app.task(name="proj.areserve")
    async def areserve(sku: str) -> int:
        raise InventoryError(f"{sku} is out of stock", 7)


@pytest.mark.parametrize("first", ["proj.reserve", "proj.areserve"])
def test_a_failed_chain_step_fails_the_steps_after_it(app: Celery, redis_store: ResultStore,
                                                      worker: Any, first: str) -> None:
    define(app)
    add = app.tasks["proj.add"]
    result = chain(app.tasks[first].s("A-1"), add.s(1), add.s(2))()
    with worker(app) as w:
        w.deliver_sent()
    for step in (result, result.parent):
        assert step.state == states.FAILURE
        assert isinstance(step.result, InventoryError)
        assert step.result.args == ("A-1 is out of stock", 7)
        assert "InventoryError" in (step.traceback or "")
    with pytest.raises(InventoryError, match=r"A-1 is out of stock"):
        result.get(timeout=1)


def test_a_plain_link_callback_is_not_marked_failed(app: Celery, redis_store: ResultStore,
                                                    worker: Any) -> None:
    define(app)
    callback = app.tasks["proj.add"].s(1)
    result = app.tasks["proj.reserve"].apply_async(("B-2",), link=callback)
    with worker(app) as w:
        w.deliver_sent()
    assert result.state == states.FAILURE
    assert redis_store.get_meta(str(callback.options.get("task_id"))) is None


def test_a_chain_in_a_chord_header_failing_early_fails_the_chord(
        app: Celery, redis_store: ResultStore, worker: Any) -> None:
    define(app)
    add, reserve = app.tasks["proj.add"], app.tasks["proj.reserve"]
    result = chord([add.s(1, 1), chain(reserve.s("C-3"), add.s(1))])(app.tasks["proj.tsum"].s())
    with worker(app) as w:
        w.deliver_sent()
    assert result.state == states.FAILURE
    assert isinstance(result.result, ChordError)
    assert "InventoryError" in str(result.result)


def test_get_of_a_result_sent_ignored_returns_none_at_once(app: Celery, redis_store: ResultStore,
                                                          worker: Any) -> None:
    define(app)

    @app.task(name="proj.quiet", ignore_result=True)
    def quiet() -> int:
        return 1

    add = app.tasks["proj.add"]
    ignored = [quiet.delay(), add.apply_async((1, 2), ignore_result=True),
               app.send_task("proj.add", (3, 4), ignore_result=True)]
    kept = [quiet.apply_async(ignore_result=False), add.delay(5, 6)]
    with worker(app) as w:
        w.deliver_sent()
    for result in ignored:
        assert result.ignored
        assert result.get(timeout=0.1) is None
        assert result.state == states.PENDING  # nothing was stored
    assert [result.ignored for result in kept] == [False, False]
    assert [result.get(timeout=1) for result in kept] == [1, 11]
    fresh = AsyncResult(ignored[0].id, app=app)  # a handle from the id knows nothing of it
    assert not fresh.ignored
    with pytest.raises(TimeoutError):
        fresh.get(timeout=0.1, interval=0.02)


def test_task_ignore_result_makes_handles_ignored(app: Celery, redis_store: ResultStore) -> None:
    define(app)
    app.conf.task_ignore_result = True
    add = app.tasks["proj.add"]
    assert add.delay(1, 1).ignored
    assert add.delay(1, 1).get(timeout=0.1) is None
    assert not add.apply_async((1, 1), ignore_result=False).ignored


def test_an_errback_taking_star_args_gets_request_exc_and_traceback(
        app: Celery, redis_store: ResultStore, worker: Any) -> None:
    define(app)
    calls = Calls()

    @app.task(name="proj.on_error")
    def on_error(*args: Any) -> None:
        calls.record("varargs", [type(arg).__name__ for arg in args])

    @app.task(name="proj.on_error_id")
    def on_error_id(task_id: str, *, note: str = "") -> None:
        calls.record("one", task_id)

    errbacks = [on_error.s(), on_error_id.s()]
    result = app.tasks["proj.reserve"].apply_async(("D-4",), link_error=errbacks)
    body = app.tasks["proj.tsum"].s()
    body.link_error(on_error.s())
    failing = chord([app.tasks["proj.reserve"].s("E-5")])(body)
    with worker(app) as w:
        w.deliver_sent()
    assert ("varargs", ["Context", "InventoryError", "str"]) in calls.calls
    assert ("varargs", ["Context", "ChordError", "NoneType"]) in calls.calls
    assert ("one", result.id) in calls.calls
    assert failing.state == states.FAILURE


def test_get_raises_a_failed_parents_error_first(app: Celery, redis_store: ResultStore,
                                                 worker: Any) -> None:
    define(app)
    add, reserve = app.tasks["proj.add"], app.tasks["proj.reserve"]
    result = chord([add.s(1, 1), reserve.s("F-6")])(app.tasks["proj.tsum"].s())
    with worker(app) as w:
        w.deliver_sent()
    with pytest.raises(InventoryError, match=r"F-6 is out of stock"):
        result.get(timeout=1)
    with pytest.raises(InventoryError, match=r"F-6 is out of stock"):
        asyncio.run(result.aget(timeout=1))
    with pytest.raises(ChordError, match=r"\ADependency \S+ raised InventoryError"):
        result.get(timeout=1, follow_parents=False)
    assert isinstance(result.get(timeout=1, propagate=False), ChordError)
    # A parent's failure is raised even before the result itself is ready.
    pending = AsyncResult("never-sent", app=app, parent=result.parent)
    with pytest.raises(InventoryError):
        pending.get(timeout=1)


def test_a_group_sent_without_an_id_has_one_and_can_be_saved(
        app: Celery, redis_store: ResultStore, worker: Any) -> None:
    define(app)
    add = app.tasks["proj.add"]
    sent = group(add.s(i, i) for i in range(3)).apply_async()
    ending = chain(add.s(1, 1), group(add.s(10), add.s(20)))()
    assert isinstance(sent.id, str)
    assert isinstance(ending.id, str)
    assert "" not in (sent.id, ending.id)
    assert sent.id != ending.id
    sent.save()
    with worker(app) as w:
        w.deliver_sent()
    restored = GroupResult.restore(sent.id, app=app)
    assert restored == sent
    assert restored is not None
    assert restored.get(timeout=1) == [0, 2, 4]
    assert ending.get(timeout=1) == [12, 22]
    sent.delete()
    assert GroupResult.restore(sent.id, app=app) is None
