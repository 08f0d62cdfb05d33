"""Results of TaskRoute routes, chord header members, groups, deduplicated redeliveries, and
results with no JSON form."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from celery_gcp import Celery
from celery_gcp.exceptions import TimeoutError
from celery_gcp.message import Message
from celery_gcp.result import AsyncResult, GroupResult
from celery_gcp.results import MemoryStore, ResultStore, chords
from celery_gcp.testing import deliver, serve


@pytest.fixture
def store(app: Celery) -> MemoryStore:
    store = MemoryStore()
    app.backend = store
    return store


def test_task_route_results_are_stored(app: Celery, store: MemoryStore) -> None:
    app.conf.task_base_url = "http://worker"
    router = APIRouter(route_class=app.TaskRoute, prefix="/orders")

    @router.post("/{order_id}/total")
    def total(order_id: int, cents: int) -> dict[str, int]:
        if cents < 0:
            raise ValueError("negative amount")
        return {"order": order_id, "cents": cents}

    ok = total.delay(order_id=7, cents=250)  # type: ignore[attr-defined]
    bad = total.delay(order_id=8, cents=-1)  # type: ignore[attr-defined]
    api = FastAPI()
    api.include_router(router)
    with serve(api) as url, httpx.Client(base_url=url, timeout=30) as client:
        for message in app.transport.pop():  # type: ignore[attr-defined]
            assert deliver(client, app, message).status_code == 200
    assert AsyncResult(ok.id, app=app).get(timeout=1) == {"order": 7, "cents": 250}
    with pytest.raises(ValueError, match="negative amount"):
        AsyncResult(bad.id, app=app).get(timeout=1)


def test_task_route_deliveries_of_revoked_or_finished_tasks_do_not_run(
        app: Celery, store: MemoryStore) -> None:
    # TaskRoute routes take the delivery pipeline's admit step, as task endpoints do.
    app.conf.task_base_url = "http://worker"
    app.conf.worker_deduplicate_successful_tasks = True
    router = APIRouter(route_class=app.TaskRoute)
    ran: list[int] = []

    @router.post("/charge")
    def charge(cents: int) -> int:
        ran.append(cents)
        return cents

    revoked = charge.delay(cents=1)  # type: ignore[attr-defined]
    charge.delay(cents=2)  # type: ignore[attr-defined]
    AsyncResult(revoked.id, app=app).revoke()
    api = FastAPI()
    api.include_router(router)
    with serve(api) as url, httpx.Client(base_url=url, timeout=30) as client:
        messages = app.transport.pop()  # type: ignore[attr-defined]
        answers = [deliver(client, app, m) for m in messages]
        again = deliver(client, app, messages[1])  # a redelivery of the finished one
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["state"] == "REVOKED"
    assert answers[1].json() == 2  # the route's own answer
    assert (again.status_code, again.json()["state"]) == (200, "SUCCESS")
    assert ran == [2]  # the revoked call never ran; the finished one ran once
    assert AsyncResult(revoked.id, app=app).state == "REVOKED"


def test_a_result_with_no_json_form_is_stored_as_a_failure(app: Celery, store: MemoryStore,
                                                           worker: Any) -> None:
    @app.task(name="proj.handle")
    def handle() -> Any:
        return object()

    result = handle.delay()
    with worker(app) as w:
        w.deliver_sent()
    assert result.state == "FAILURE"
    with pytest.raises(TypeError, match="cannot be stored as JSON"):
        result.get(timeout=1)


def test_chord_members_are_counted_after_their_meta_is_stored(
        app: Celery, store: MemoryStore, worker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, Any, Any]] = []

    def part_done(app_: Celery, store_: ResultStore, message: Message, state: str,
                  result: Any) -> None:
        meta = store_.get_meta(message.id)  # stored before the count
        calls.append((message.id, state, result, meta and meta["status"]))

    @app.task(name="proj.member")
    def member(n: int) -> int:
        if n < 0:
            raise ValueError("negative")
        return n * 10

    header = {chords.CHORD_HEADER: {"id": "c-1", "index": 0, "size": 2}}
    ok = member.apply_async((3,), headers=header)
    bad = member.apply_async((-1,), headers=header)
    plain = member.delay(1)
    messages = app.transport.pop()  # type: ignore[attr-defined]
    with worker(app) as w:
        # The contract stub raises for a chord member: the run is redelivered, not lost.
        assert [w.deliver(m).status_code for m in messages] == [503, 503, 200]
        monkeypatch.setattr(chords, "part_done", part_done)
        assert [w.deliver(m).status_code for m in messages] == [200, 200, 200]
    assert plain.state == "SUCCESS"
    assert [(c[0], c[1], c[3]) for c in calls] == [(ok.id, "SUCCESS", "SUCCESS"),
                                                   (bad.id, "FAILURE", "FAILURE")]
    assert calls[0][2] == 30
    assert isinstance(calls[1][2], ValueError)


def test_deduplicate_successful_tasks(app: Celery, store: MemoryStore, worker: Any) -> None:
    ran: list[int] = []

    @app.task(name="proj.charge")
    def charge(amount: int) -> int:
        ran.append(amount)
        return amount

    charge.delay(5)
    [message] = app.transport.pop()  # type: ignore[attr-defined]
    with worker(app) as w:
        assert w.deliver(message).status_code == 200
        assert w.deliver(message).status_code == 200  # opt-in: off, so it runs again
        app.conf.worker_deduplicate_successful_tasks = True
        again = w.deliver(message)
    assert again.status_code == 200
    assert again.json()["result"] == 5
    assert ran == [5, 5]


def test_group_result_save_restore_join(app: Celery, store: MemoryStore) -> None:
    app.conf.update(task_always_eager=True, task_store_eager_result=True)
    add = app.task(name="proj.add")(lambda x, y: x + y)
    members = [AsyncResult(add.delay(i, i).id, app=app) for i in range(3)]
    missing = AsyncResult("not-yet", app=app)
    GroupResult("g-1", [*members, missing], app=app).save()
    restored = GroupResult.restore("g-1", app=app)
    assert restored is not None
    assert restored.id == "g-1"
    assert [r.id for r in restored] == [r.id for r in members] + ["not-yet"]
    assert restored.completed_count() == 3
    assert restored.waiting()
    assert not restored.ready()
    with pytest.raises(TimeoutError):
        restored.join(timeout=0.05, interval=0.01)
    done = GroupResult("g-2", members, app=app)
    assert done.get(timeout=1) == [0, 2, 4]
    # Celery's hooks, through get() as through join(): callback per member, the metas seen.
    called: list[tuple[str, Any]] = []
    metas: list[str] = []
    assert GroupResult("g-3", members, app=app).get(
        timeout=1, callback=lambda task_id, value: called.append((task_id, value)),
        on_message=lambda meta: metas.append(meta["task_id"])) == [0, 2, 4]
    assert called == [(r.id, 2 * i) for i, r in enumerate(members)]
    assert metas == [r.id for r in members]
    with pytest.raises(TypeError):
        members[0].get(timeout=1, on_mesage=print)  # a misspelt hook is not dropped
    assert done.successful()
    assert not done.failed()
    restored.delete()
    assert GroupResult.restore("g-1", app=app) is None
