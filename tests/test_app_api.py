"""Celery's app and task API: ``app.set_current()``, assigning ``app.timezone``,
``celery_gcp.uuid``, ``Task.push_request`` / ``pop_request``, ``app.tasks.register``."""

from __future__ import annotations

import threading
import uuid as std_uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import celery_gcp
from celery_gcp import Celery, Task, _state, beat, current_app, get_current_app
from celery_gcp.exceptions import ImproperlyConfigured, InvalidSchedule, InvalidTaskError, Retry
from celery_gcp.schedules import crontab, maybe_schedule

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def restore_current_app() -> Iterator[None]:
    before = _state._current
    yield
    _state._current = before


# -- app.set_current() ---------------------------------------------------------------------------


def test_set_current_makes_the_app_current(restore_current_app: None) -> None:
    first = Celery("first")
    second = Celery("second")
    assert get_current_app() is second
    first.set_current()
    assert get_current_app() is first
    assert current_app.main == "first"


# -- app.timezone = ... --------------------------------------------------------------------------


def test_assigning_app_timezone_sets_the_timezone_setting(app: Celery, sent: list[Any]) -> None:
    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    app.timezone = "Europe/Paris"
    assert app.timezone == PARIS
    assert app.conf.timezone == "Europe/Paris"
    # A naive ETA is read in the app's time zone: 09:00 in Paris in January is 08:00 UTC.
    add.apply_async((1, 2), eta=datetime(2031, 1, 6, 9, 0))
    assert sent[-1].eta == datetime(2031, 1, 6, 8, 0, tzinfo=UTC)


def test_assigned_app_timezone_moves_crontab_fires_and_beat_jobs(app: Celery) -> None:
    nine = maybe_schedule(crontab(minute=0, hour=9, nowfun=lambda: datetime(2025, 6, 1, 6,
                                                                            tzinfo=UTC)),
                          app=app)
    app.timezone = "Europe/Paris"
    # 09:00 in Paris in June is 07:00 UTC: an hour after 06:00 UTC.
    assert nine.remaining_estimate(datetime(2025, 6, 1, 5, tzinfo=UTC)) == timedelta(hours=1)
    assert beat.time_zone(app) == "Europe/Paris"
    app.timezone = ZoneInfo("America/New_York")
    assert beat.time_zone(app) == "America/New_York"
    assert nine.remaining_estimate(datetime(2025, 6, 1, 5, tzinfo=UTC)) == timedelta(hours=7)


@pytest.mark.parametrize(("value", "setting", "zone"), [
    (UTC, "UTC", ZoneInfo("UTC")), (ZoneInfo("Etc/UTC"), "Etc/UTC", ZoneInfo("Etc/UTC")),
    ("utc", "UTC", ZoneInfo("UTC")), (None, None, UTC), (PARIS, "Europe/Paris", PARIS),
])
def test_app_timezone_takes_names_and_zones(app: Celery, value: Any, setting: str | None,
                                            zone: Any) -> None:
    app.timezone = value
    assert app.conf.timezone == setting
    assert app.timezone == zone


def test_app_timezone_refuses_what_cloud_scheduler_cannot_run_in(app: Celery) -> None:
    with pytest.raises(InvalidSchedule, match="Europe/Pariss"):
        app.timezone = "Europe/Pariss"
    with pytest.raises(ImproperlyConfigured, match="tz database name"):
        app.timezone = timezone(timedelta(hours=2))
    assert app.conf.timezone is None  # nothing was set


# -- celery_gcp.uuid -----------------------------------------------------------------------------


def test_celery_gcp_uuid_is_a_random_uuid_string() -> None:
    first, second = celery_gcp.uuid(), celery_gcp.uuid()
    assert isinstance(first, str)
    assert std_uuid.UUID(first).version == 4
    assert first != second
    assert std_uuid.UUID(celery_gcp.uuid(std_uuid.uuid1)).version == 1
    assert "uuid" in celery_gcp.__all__


# -- Task.push_request / pop_request -------------------------------------------------------------


def test_push_request_and_pop_request_keep_a_stack_as_celery(app: Celery) -> None:
    @app.task(bind=True, name="proj.job")
    def job(self: Task[Any, Any]) -> None: ...

    assert job.request.called_directly
    job.push_request(id="abc", retries=2, called_directly=False)
    assert (job.request.id, job.request.retries, job.request.called_directly) == (
        "abc", 2, False)
    job.request.foo = 32  # the pushed request itself, as in Celery
    assert job.request.get("foo") == 32
    job.push_request(retries=3)  # starts as a copy of the current request
    assert (job.request.id, job.request.retries, job.request.get("foo")) == ("abc", 3, 32)
    job.pop_request()
    assert job.request.retries == 2
    job.pop_request()
    assert job.request.called_directly
    assert job.request.id is None
    job.pop_request()  # nothing left: nothing happens, as in Celery


def test_a_pushed_request_is_what_retry_reads(app: Celery, sent: list[Any]) -> None:
    @app.task(bind=True, name="proj.job")
    def job(self: Task[Any, Any], x: int) -> None: ...

    job.push_request(id="abc", retries=1, called_directly=False, args=(7,), kwargs={})
    try:
        with pytest.raises(Retry):
            job.retry(countdown=5)
    finally:
        job.pop_request()
    assert (sent[-1].id, sent[-1].retries, sent[-1].body) == ("abc", 2, b'{"x":7}')


def test_pushed_requests_belong_to_their_thread(app: Celery) -> None:
    @app.task(bind=True, name="proj.job")
    def job(self: Task[Any, Any]) -> None: ...

    job.push_request(id="mine")
    seen: list[Any] = []
    thread = threading.Thread(target=lambda: seen.append(job.request.id))
    thread.start()
    thread.join()
    job.pop_request()
    assert seen == [None]


def test_a_task_called_under_a_pushed_request_gets_its_own(app: Celery) -> None:
    @app.task(bind=True, name="proj.echo")
    def echo(self: Task[Any, Any], x: int) -> tuple[Any, ...]:
        return self.request.args

    echo.push_request(id="abc", args=(1,))
    try:
        assert echo(5) == (5,)
        assert echo.request.args == (1,)
    finally:
        echo.pop_request()


# -- app.tasks.register(ClassBasedTask) ----------------------------------------------------------


class Multiply(Task[Any, Any]):
    name = "proj.multiply"

    def run(self, x: int, y: int) -> int:
        return x * y


class Unnamed(Task[Any, Any]):
    def run(self, x: int) -> int:
        return x


def test_tasks_register_registers_a_class_based_task(app: Celery, worker: Any) -> None:
    registered = app.tasks.register(Multiply)
    assert app.tasks["proj.multiply"] is registered
    assert isinstance(registered, Multiply)
    assert registered.app is app
    with worker(app) as w:
        registered.delay(6, 7)
        [response] = w.deliver_sent()
    assert (response.status_code, response.json()["result"]) == (200, 42)


def test_register_task_registers_a_class_based_task(app: Celery, worker: Any) -> None:
    registered = app.register_task(Unnamed)
    assert registered.name == f"{__name__}.Unnamed"  # named after its module, as in Celery
    with worker(app) as w:
        app.tasks[registered.name].delay(3)
        [response] = w.deliver_sent()
    assert response.json()["result"] == 3


def test_tasks_register_needs_a_name_as_celery() -> None:
    app = Celery("proj", broker_url="memory://", task_always_eager=True)

    class Nameless(Task[Any, Any]):
        def run(self) -> None: ...

    with pytest.raises(InvalidTaskError, match="register_task"):
        app.tasks.register(Nameless)
    assert app.tasks.register(Multiply()).delay(2, 3).get() == 6
