"""Eager mode, exactly as Celery: inline runs through the same JSON round trip."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import Depends

from celery_gcp import Celery, EagerResult, Task
from celery_gcp import signals as sig
from celery_gcp.exceptions import (
    ImproperlyConfigured,
    MaxRetriesExceededError,
    Reject,
    Retry,
    TaskArgumentError,
)


@pytest.fixture
def eager() -> Celery:
    return Celery("eager", task_always_eager=True)


def test_delay_runs_inline_and_returns_an_eager_result(eager: Celery) -> None:
    @eager.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.delay(2, 3)
    assert isinstance(result, EagerResult)
    assert result.get() == 5
    assert (result.state, result.successful(), result.ready(), result.failed()) == (
        "SUCCESS", True, True, False)


def test_arguments_go_through_the_json_round_trip(eager: Celery) -> None:
    @eager.task
    def kind(when: datetime, items: tuple[int, ...]) -> str:
        return f"{type(when).__name__}:{type(items).__name__}"

    assert kind.delay("2030-01-01T00:00:00+00:00", [1, 2]).get() == "datetime:tuple"
    with pytest.raises(TaskArgumentError, match="'when'"):
        kind.delay("not a date", [])


def test_countdown_and_eta_are_ignored(eager: Celery) -> None:
    @eager.task
    def now() -> str:
        return "ran"

    assert now.apply_async(countdown=3600).get() == "ran"
    assert now.apply_async(eta=datetime(2099, 1, 1, tzinfo=UTC)).get() == "ran"


def test_retries_run_again_at_once_with_the_same_id(eager: Celery) -> None:
    seen: list[tuple[str, int, bool]] = []

    @eager.task(bind=True)
    def flaky(self: Task[Any, Any], n: int) -> int:
        seen.append((self.request.id, self.request.retries, self.request.is_eager))
        if self.request.retries < 2:
            raise self.retry(countdown=60)
        return n

    result = flaky.apply_async((7,), task_id="fixed")
    assert result.get() == 7
    assert result.id == "fixed"
    assert seen == [("fixed", 0, True), ("fixed", 1, True), ("fixed", 2, True)]


def test_max_retries_exceeded_ends_in_failure(eager: Celery) -> None:
    runs: list[int] = []

    @eager.task(bind=True, max_retries=3)
    def always(self: Task[Any, Any]) -> None:
        runs.append(self.request.retries)
        raise self.retry(countdown=1)

    result = always.delay()
    assert runs == [0, 1, 2, 3]
    assert result.state == "FAILURE"
    with pytest.raises(MaxRetriesExceededError):
        result.get()
    assert isinstance(result.get(propagate=False), MaxRetriesExceededError)
    assert "MaxRetriesExceededError" in (result.traceback or "")


def test_autoretry_in_eager_mode_runs_the_body_max_retries_plus_one_times(
        eager: Celery) -> None:
    runs: list[int] = []

    @eager.task(autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
    def connect() -> None:
        runs.append(1)
        raise ConnectionError("down")

    result = connect.delay()
    assert len(runs) == 4
    assert result.failed()
    with pytest.raises(ConnectionError):
        result.get()


def test_failure_is_an_eager_result_whose_get_reraises(eager: Celery) -> None:
    @eager.task
    def boom() -> None:
        raise ValueError("boom")

    result = boom.delay()
    assert result.state == "FAILURE"
    assert isinstance(result.result, ValueError)
    with pytest.raises(ValueError, match="boom"):
        result.get()


def test_eager_propagates_raises_at_the_call(eager: Celery) -> None:
    eager.conf.task_eager_propagates = True

    @eager.task
    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        boom.delay()


def test_quirk_retry_with_eager_propagates_raises_retry(eager: Celery) -> None:
    eager.conf.task_eager_propagates = True
    runs: list[int] = []

    @eager.task(bind=True)
    def flaky(self: Task[Any, Any]) -> None:
        runs.append(1)
        raise self.retry(countdown=1)

    with pytest.raises(Retry):
        flaky.delay()
    assert runs == [1]


def test_ignore_and_reject_are_quiet_even_when_propagating(eager: Celery) -> None:
    eager.conf.task_eager_propagates = True

    @eager.task
    def reject() -> None:
        raise Reject("no", requeue=True)

    assert reject.delay().state == "REJECTED"


def test_apply_runs_here_without_eager_mode(app: Celery, sent: list[Any]) -> None:
    @app.task
    def double(x: int) -> int:
        return x * 2

    assert double.apply((4,)).get() == 8
    assert double.apply((4,), throw=True).get() == 8
    assert sent == []


def test_apply_throw_overrides_the_setting(app: Celery) -> None:
    @app.task
    def boom() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        boom.apply(throw=True)
    assert boom.apply().state == "FAILURE"


def test_task_signals_fire_but_publish_signals_do_not(eager: Celery, receive: Any) -> None:
    prerun, success = receive(sig.task_prerun), receive(sig.task_success)
    published = receive(sig.before_task_publish)

    @eager.task
    def ok() -> int:
        return 1

    ok.delay()
    assert len(prerun) == 1
    assert success[0]["result"] == 1
    assert published == []


def test_link_callbacks_run_eagerly(eager: Celery) -> None:
    got: list[int] = []

    @eager.task
    def add(x: int, y: int) -> int:
        return x + y

    @eager.task
    def record(value: int) -> None:
        got.append(value)

    add.apply_async((1, 2), link=record.s())
    assert got == [3]


def test_async_task_in_eager_mode_from_sync_code(eager: Celery) -> None:
    @eager.task(bind=True)
    async def fetch(self: Task[Any, Any], x: int) -> tuple[int, bool]:
        await asyncio.sleep(0)
        return x, self.request.is_eager

    assert fetch.delay(3).get() == (3, True)


def test_an_eager_run_has_the_bare_host_name(eager: Celery) -> None:
    # Celery's apply() gives the host name; a worker's request has its node name.
    @eager.task(bind=True)
    def where(self: Task[Any, Any]) -> str | None:
        return self.request.hostname

    assert where.delay().get() == socket.gethostname()


async def test_async_task_in_eager_mode_inside_a_running_loop(eager: Celery) -> None:
    @eager.task(bind=True)
    async def fetch(self: Task[Any, Any], x: int) -> tuple[int, str | None]:
        await asyncio.sleep(0)
        return x, self.request.id

    sync_result = fetch.apply_async((3,), task_id="sync-in-loop")
    assert sync_result.get() == (3, "sync-in-loop")
    async_result = await fetch.aapply_async((4,), task_id="awaited")
    assert async_result.get() == (4, "awaited")
    assert (await fetch.adelay(5)).get()[0] == 5


async def test_sync_task_awaited_in_eager_mode(eager: Celery) -> None:
    @eager.task
    def double(x: int) -> int:
        return x * 2

    assert (await double.adelay(21)).get() == 42


def get_session() -> str:
    return "session"


def test_dependencies_cannot_run_eagerly(eager: Celery) -> None:
    @eager.task
    def uses_db(x: int, db: str = Depends(get_session)) -> None: ...

    with pytest.raises(ImproperlyConfigured, match="FastAPI dependencies"):
        uses_db.delay(1)


def test_calling_a_task_directly(app: Celery) -> None:
    @app.task(bind=True)
    def direct(self: Task[Any, Any], x: int) -> bool:
        return self.request.called_directly

    assert direct(1) is True


def test_retry_when_called_directly_reraises(app: Celery) -> None:
    @app.task(bind=True)
    def direct(self: Task[Any, Any], fail_with: str) -> None:
        if fail_with == "exc":
            raise self.retry(exc=KeyError("original"))
        raise self.retry()

    with pytest.raises(KeyError, match="original"):
        direct("exc")
    with pytest.raises(Retry):
        direct("plain")
