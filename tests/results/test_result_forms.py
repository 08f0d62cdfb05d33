"""Celery's serialised forms of results (``as_tuple()``, ``as_list()``,
``result_from_tuple``) and ``ResultSet``'s set methods, against Celery 5 as the oracle: a
project keeps the tuple of a workflow's result in its database and rebuilds it later."""

from __future__ import annotations

import json
from typing import Any

import celery
import celery.result
import pytest

import celery_gcp.result as celery_gcp_result
from celery_gcp import Celery
from celery_gcp.exceptions import TimeoutError
from celery_gcp.result import AsyncResult, GroupResult, ResultSet, result_from_tuple
from celery_gcp.results import MemoryStore


@pytest.fixture
def theirs() -> Any:
    app = celery.Celery("forms", set_as_current=False)
    yield app
    app.close()


def chain_of(module: Any, app: Any) -> Any:
    """A chain's result as both libraries build it: c's parent is a group whose parent is a."""
    first = module.AsyncResult("a", app=app)
    header = module.GroupResult("g", [module.AsyncResult("b1", app=app),
                                      module.AsyncResult("b2", app=app)], parent=first,
                                app=app)
    return module.AsyncResult("c", parent=header, app=app)


def lists(value: Any) -> Any:
    """``value`` as JSON keeps it (tuples become lists)."""
    return json.loads(json.dumps(value))


def test_as_tuple_and_as_list_are_celerys(app: Celery, theirs: Any) -> None:
    ours, celerys = chain_of(celery_gcp_result, app), chain_of(celery.result, theirs)
    assert ours.as_tuple() == celerys.as_tuple()
    assert ours.parent.as_tuple() == celerys.parent.as_tuple()
    first = AsyncResult("x", app=app, parent=AsyncResult("w", app=app))
    assert first.as_list() == celery.result.AsyncResult(
        "x", app=theirs, parent=celery.result.AsyncResult("w", app=theirs)).as_list()


def test_result_from_tuple_rebuilds_what_as_tuple_gave(app: Celery, theirs: Any) -> None:
    stored = lists(chain_of(celery.result, theirs).as_tuple())  # as a project keeps it
    rebuilt = result_from_tuple(stored, app=app)
    assert isinstance(rebuilt, AsyncResult)
    assert rebuilt.id == "c"
    header = rebuilt.parent
    assert isinstance(header, GroupResult)
    assert (header.id, [r.id for r in header.results], header.parent.id) == ("g", ["b1", "b2"],
                                                                              "a")
    assert lists(rebuilt.as_tuple()) == stored
    assert result_from_tuple(rebuilt, app=app) is rebuilt  # a result is returned as it is
    # And Celery reads ours.
    assert celery.result.result_from_tuple(lists(rebuilt.as_tuple()), app=theirs).as_tuple() \
        == chain_of(celery.result, theirs).as_tuple()


def test_a_rebuilt_result_reads_the_store(app: Celery) -> None:
    app.backend = MemoryStore()
    app.conf.update(task_always_eager=True, task_store_eager_result=True)
    add = app.task(name="proj.add")(lambda x, y: x + y)
    sent = add.delay(2, 3)
    assert result_from_tuple(lists(AsyncResult(sent.id, app=app).as_tuple()),
                             app=app).get(timeout=1) == 5


def test_result_set_methods_are_celerys(app: Celery) -> None:
    a, b, c = (AsyncResult(i, app=app) for i in "abc")
    results = ResultSet([a], app=app)
    results.update([a, b, c])
    assert [r.id for r in results] == ["a", "b", "c"]
    results.discard("b")
    results.discard("nope")  # not there: nothing to do
    assert [r.id for r in results] == ["a", "c"]
    results.clear()
    assert len(results) == 0
    assert ResultSet.join_native is ResultSet.join
    assert not results.supports_native_join
    assert not a.supports_native_join
    assert AsyncResult.TimeoutError is TimeoutError
    group = GroupResult("g", [a, b], app=app)
    assert group.children == [a, b]
    assert results.backend is app.backend


def test_group_result_takes_its_id_first_as_celerys(app: Celery) -> None:
    members = [AsyncResult("m1", app=app), AsyncResult("m2", app=app)]
    group = GroupResult("g-1", members, app=app)
    assert (group.id, [r.id for r in group]) == ("g-1", ["m1", "m2"])
    # The results first (neither library's order) would make a group of nothing: refused.
    with pytest.raises(TypeError, match=r"GroupResult\(id, results\)"):
        GroupResult(members, app=app)  # type: ignore[arg-type]
