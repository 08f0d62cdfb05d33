"""Per-call ``max_retries`` at a worker: Cloud Tasks delivers each retry over HTTP."""

from __future__ import annotations

from typing import Any

from celery_gcp import Celery, Task

from .conftest import Ran, Stack


class Boom(Exception):
    pass


def test_per_call_max_retries_stops_autoretry_at_the_worker(stack_factory: Any) -> None:
    def define(app: Celery, ran: Ran) -> None:
        class Recorded(Task[Any, Any]):
            def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                           einfo: Any) -> None:
                ran.record("failed", repr(exc))

        @app.task(name="proj.flaky", bind=True, base=Recorded, autoretry_for=(Exception,),
                  max_retries=10, default_retry_delay=0)
        def flaky(self: Task[Any, Any]) -> None:
            ran.record("run", self.request.retries)
            if self.request.retries == 2:
                self.retry(exc=Boom("third run"), max_retries=0)
            raise Boom("again")

    stack: Stack = stack_factory(define)
    stack.app.tasks["proj.flaky"].delay()
    stack.ran.wait_for(4)
    stack.emu.wait_idle()  # nothing left to dispatch: no fourth run is on its way

    assert stack.ran.calls == [("run", 0), ("run", 1), ("run", 2),
                               ("failed", "Boom('third run')")]
