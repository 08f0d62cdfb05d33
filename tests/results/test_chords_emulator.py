"""A chord under faults: app -> official client -> emulator -> HTTP -> served worker.

100 header tasks; some answer 503 after their result was stored (Cloud Tasks delivers them
again), two finish together (a barrier); the body runs exactly once, with every result in
order. The store's hook (tests/results/chord_layer.py) runs between a member's stored meta
and its count.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI

from celery_gcp import Celery, chord
from celery_gcp.layers import Layer
from celery_gcp.testing import serve

from ..calls import Calls
from ..shared_emulator import SharedEmulator
from .chord_layer import with_store

SIZE = 100


def redelivered_once(inner: Any, task_ids: set[str]) -> Any:
    """An ASGI app answering 503, once each, for ``task_ids``, after the run (and its stored
    result) is over: Cloud Tasks then delivers the task again."""
    lock, seen = threading.Lock(), set()

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or ())
        task_id = headers.get(b"x-celery-task-id", b"").decode()
        with lock:
            inject = task_id in task_ids and task_id not in seen
            seen.add(task_id)
        if not inject:
            await inner(scope, receive, send)
            return

        async def unavailable(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "status": 503}
            await send(message)

        await inner(scope, receive, unavailable)

    return asgi


def test_the_body_runs_once_with_every_result_in_order_under_redeliveries(
        monkeypatch: Any, module_emulator: SharedEmulator) -> None:
    emu = module_emulator.begin(None)
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", emu.address)
    app = Celery("proj", gcp_project="p", gcp_location="l")
    ran, counted = Calls(), Calls()
    together = threading.Barrier(2, timeout=30)
    last_two: set[str] = set()

    waited: set[str] = set()

    def after_store(task_id: str, meta: Any) -> None:
        if task_id in last_two and meta["status"] == "SUCCESS" and task_id not in waited:
            waited.add(task_id)
            together.wait()  # both stored; both count at the same moment

    store = with_store(app, after_store)

    @app.task(name="proj.double", bind=True)
    def double(self: Any, x: int) -> int:
        if self.request.id in last_two and not self.request.delivery_info["redelivered"]:
            # The last two: wait until every other member was counted at least once.
            with counted.cond:
                assert counted.cond.wait_for(
                    lambda: len({v for _, v in counted.calls} - last_two) >= SIZE - 2, 60)
        return 2 * x

    @app.task(name="proj.collect")
    def collect(values: list[int]) -> int:
        ran.record("collect", values)
        return len(values)

    class Counted(Layer):  # records each member once its part_done call returned
        def after_run(self, run: Any, result: Any) -> None:
            counted.record("counted", run.message.id)

    app.layers.add(Counted())
    api = FastAPI()
    api.include_router(app.router)
    header = [app.tasks["proj.double"].s(i) for i in range(SIZE)]
    signature = chord(header, app.tasks["proj.collect"].s(), app=app)
    frozen = signature._freeze(None)
    ids = [r.id for r in frozen.parent.results]
    last_two.update(ids[-2:])
    # 503 after the run: ten early members and the last two (after the body was sent).
    faulty = redelivered_once(api, {*ids[:10], *ids[-2:]})
    with serve(faulty) as url:
        app.conf.task_base_url = url
        client = emu.tasks_client()
        parent = "projects/p/locations/l"
        client.create_queue(parent=parent, queue={"name": f"{parent}/queues/celery"})
        result = signature.apply_async()
        assert result.id == frozen.id
        ran.wait_for(1, timeout=120)
        with counted.cond:  # every injected redelivery ran again
            assert counted.cond.wait_for(lambda: len(counted.calls) >= SIZE + 12, 120)
        emu.wait_idle()
    module_emulator.reset()
    assert ran.calls == [("collect", [2 * i for i in range(SIZE)])]
    assert store.get_meta(result.id)["result"] == SIZE  # type: ignore[index]
