"""Per-call ``max_retries``: ``self.retry(max_retries=n)`` sets the limit for the rest of the run,
autoretry of the error it raises included, as in Celery."""

from __future__ import annotations

from typing import Any

import celery

from celery_gcp import Celery, Task
from celery_gcp.states import FAILURE


class Boom(Exception):
    pass


def flaky_body(runs: list[int]) -> Any:
    """Fails on every run; on the third (retries == 2) it retries with ``max_retries=0``."""

    def flaky(self: Any) -> None:
        runs.append(self.request.retries)
        if self.request.retries == 2:
            self.retry(exc=Boom("third run"), max_retries=0)
        raise Boom(f"run {len(runs)}")

    return flaky


def test_per_call_max_retries_stops_autoretry_eagerly() -> None:
    app = Celery("limits", task_always_eager=True)
    runs: list[int] = []
    flaky = app.task(bind=True, autoretry_for=(Exception,), max_retries=10,
                     default_retry_delay=0)(flaky_body(runs))

    result = flaky.delay()

    assert runs == [0, 1, 2]
    assert result.state == FAILURE
    assert isinstance(result.result, Boom)
    assert str(result.result) == "third run"


def test_per_call_max_retries_matches_celery_run_count() -> None:
    theirs: list[int] = []
    reference = celery.Celery("reference", broker="memory://")
    reference.conf.task_always_eager = True
    reference.task(bind=True, autoretry_for=(Exception,), max_retries=10,
                   default_retry_delay=0)(flaky_body(theirs)).delay()

    ours: list[int] = []
    app = Celery("limits", task_always_eager=True)
    app.task(bind=True, autoretry_for=(Exception,), max_retries=10,
             default_retry_delay=0)(flaky_body(ours)).delay()

    assert ours == theirs == [0, 1, 2]


def test_per_call_max_retries_does_not_carry_over_to_the_next_call() -> None:
    # Celery's documented rule (its implementation leaves the override on the task object).
    app = Celery("limits", task_always_eager=True)
    runs: list[int] = []
    flaky = app.task(bind=True, autoretry_for=(Exception,), max_retries=10,
                     default_retry_delay=0)(flaky_body(runs))

    flaky.delay()
    runs.clear()
    flaky.delay()

    assert runs == [0, 1, 2]


def test_per_call_max_retries_raises_max_retries_exceeded_without_exc() -> None:
    app = Celery("limits", task_always_eager=True)
    runs: list[int] = []

    @app.task(bind=True, autoretry_for=(KeyError,), max_retries=10, default_retry_delay=0)
    def once(self: Task[Any, Any]) -> None:
        runs.append(self.request.retries)
        if self.request.retries == 1:
            self.retry(max_retries=0)
        raise KeyError("first run")

    result = once.delay()

    assert runs == [0, 1]
    assert isinstance(result.result, once.MaxRetriesExceededError)
