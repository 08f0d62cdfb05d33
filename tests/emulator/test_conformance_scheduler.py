"""Cloud Scheduler conformance, one test per documented behaviour (issue 16, items 21-30).

Each test talks to the emulator through the official clients (sync, and async where the item
says so) and, where a job fires, to a real recording handler over HTTP, on a manual clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import scheduler_v1
from google.protobuf import duration_pb2, field_mask_pb2

from celery_gcp import cron
from celery_gcp.emulator import Emulator, ManualClock

from .conftest import Handler, eventually

_JOB_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/jobs/[A-Za-z0-9_\-]{1,500}\Z")
_DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
_INTERNAL = grpc.StatusCode.INTERNAL.value[0]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def seconds(value: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(int(value * 1e9))
    return out


@pytest.fixture
def client(manual_emu: Emulator) -> Any:
    return manual_emu.scheduler_client()


@pytest.fixture
def make_job(manual_emu: Emulator, handler: Handler, client: Any) -> Callable[..., Any]:
    def make(name: str, schedule: str = "0 12 * * *", path: str = "/job", **fields: Any) -> Any:
        job = {"name": f"{manual_emu.location}/jobs/{name}", "schedule": schedule,
               "http_target": {"uri": f"{handler.url}{path}", **fields.pop("http", {})},
               **fields}
        return client.create_job(parent=manual_emu.location, job=job)

    return make


def _job(emulator: Emulator, uri: str, **fields: Any) -> dict[str, Any]:
    return {"schedule": "0 12 * * *", "http_target": {"uri": uri}, **fields}


# 21 --------------------------------------------------------------------------------------------

def test_21_app_engine_targets_are_refused_with_a_clear_message(
        manual_emu: Emulator, client: Any) -> None:
    job = {"name": f"{manual_emu.location}/jobs/gae", "schedule": "* * * * *",
           "app_engine_http_target": {"relative_uri": "/cron"}}
    with pytest.raises(exceptions.InvalidArgument, match="app_engine_http_target is not"):
        client.create_job(parent=manual_emu.location, job=job)
    with pytest.raises(exceptions.InvalidArgument, match="pubsub_target is not"):
        client.create_job(parent=manual_emu.location, job={
            "name": f"{manual_emu.location}/jobs/ps", "schedule": "* * * * *",
            "pubsub_target": {"topic_name": "projects/p/topics/t"}})
    tasks = manual_emu.tasks_client()
    queue = tasks.create_queue(parent=manual_emu.location,
                               queue={"name": f"{manual_emu.location}/queues/gae"})
    with pytest.raises(exceptions.InvalidArgument, match="http_request"):
        tasks.create_task(parent=queue.name,
                          task={"app_engine_http_request": {"relative_uri": "/work"}})


# 22 --------------------------------------------------------------------------------------------

def test_22_create_job_without_a_name_gets_a_unique_name(manual_emu: Emulator, client: Any,
                                                         handler: Handler) -> None:
    first = client.create_job(parent=manual_emu.location, job=_job(manual_emu, handler.url))
    second = client.create_job(parent=manual_emu.location, job=_job(manual_emu, handler.url))
    assert _JOB_NAME.match(first.name)
    assert first.name.startswith(f"{manual_emu.location}/jobs/")
    assert first.name != second.name
    assert client.get_job(name=first.name).schedule == "0 12 * * *"


async def test_22_create_job_without_a_name_async(manual_emu: Emulator, handler: Handler) -> None:
    client = manual_emu.async_scheduler_client()
    job = await client.create_job(parent=manual_emu.location, job=_job(manual_emu, handler.url))
    assert _JOB_NAME.match(job.name)
    assert (await client.get_job(name=job.name)).name == job.name


# 23 --------------------------------------------------------------------------------------------

def test_23_description_over_500_characters_is_refused(make_job: Callable[..., Any],
                                                       client: Any) -> None:
    job = make_job("described", description="d" * 500)
    with pytest.raises(exceptions.InvalidArgument, match="501 characters"):
        make_job("too-long", description="d" * 501)
    with pytest.raises(exceptions.InvalidArgument, match="at most 500"):
        client.update_job(job={"name": job.name, "description": "d" * 501},
                          update_mask=field_mask_pb2.FieldMask(paths=["description"]))
    assert client.get_job(name=job.name).description == "d" * 500


async def test_23_job_over_1_mb_is_refused(manual_emu: Emulator, handler: Handler) -> None:
    client = manual_emu.async_scheduler_client()
    job = {"name": f"{manual_emu.location}/jobs/big", "schedule": "0 12 * * *",
           "http_target": {"uri": handler.url, "body": b"x" * (1024 * 1024)}}
    with pytest.raises(exceptions.InvalidArgument, match="at most 1 MB"):
        await client.create_job(parent=manual_emu.location, job=job)
    with pytest.raises(exceptions.NotFound):
        await client.get_job(name=job["name"])


# 24 --------------------------------------------------------------------------------------------

def test_24_pause_and_resume_preconditions(make_job: Callable[..., Any], client: Any) -> None:
    job = make_job("toggled")
    with pytest.raises(exceptions.FailedPrecondition,
                       match="is ENABLED: only PAUSED jobs can be resumed"):
        client.resume_job(name=job.name)
    assert client.pause_job(name=job.name).state == scheduler_v1.Job.State.PAUSED
    with pytest.raises(exceptions.FailedPrecondition,
                       match="is PAUSED: only ENABLED jobs can be paused"):
        client.pause_job(name=job.name)
    assert client.resume_job(name=job.name).state == scheduler_v1.Job.State.ENABLED


async def test_24_pause_and_resume_preconditions_async(manual_emu: Emulator,
                                                       make_job: Callable[..., Any]) -> None:
    job = make_job("toggled-async")
    client = manual_emu.async_scheduler_client()
    with pytest.raises(exceptions.FailedPrecondition):
        await client.resume_job(name=job.name)
    await client.pause_job(name=job.name)
    with pytest.raises(exceptions.FailedPrecondition):
        await client.pause_job(name=job.name)


# 25 --------------------------------------------------------------------------------------------

def test_25_schedule_time_is_the_retry_time_while_a_retry_waits(
        manual_emu: Emulator, clock: ManualClock, make_job: Callable[..., Any],
        handler: Handler, client: Any) -> None:
    handler.statuses = [503]
    job = make_job("retrying", retry_config={"retry_count": 1,
                                             "min_backoff_duration": seconds(30)})
    fire = job.schedule_time.timestamp()
    clock.set(fire)
    handler.wait_for(1)
    manual_emu.wait_idle()
    assert client.get_job(name=job.name).schedule_time.timestamp() == fire + 30
    clock.advance(30)
    handler.wait_for(2)
    manual_emu.wait_idle()
    done = client.get_job(name=job.name)
    assert done.status.code == 0
    assert done.schedule_time.timestamp() == fire + 86400  # the next scheduled fire again


# 26 --------------------------------------------------------------------------------------------

def _retry_until_idle(manual_emu: Emulator, clock: ManualClock, handler: Handler,
                      step: float) -> int:
    """Advance ``step`` at a time while each step brings a new attempt; the attempts made."""
    while True:
        count = len(handler.received)
        manual_emu.wait_idle()
        clock.advance(step)
        manual_emu.wait_idle()
        if len(handler.received) == count:
            return count


@pytest.mark.parametrize(("retry_count", "max_retry_duration", "attempts"), [
    (1, 60, 13),  # retry_count is reached after one retry, the duration after 12 (0 ... 60 s)
    (3, 1, 4),  # the duration is reached at once, retry_count after three retries
])
def test_26_retries_go_on_until_both_limits_are_reached(
        manual_emu: Emulator, clock: ManualClock, make_job: Callable[..., Any],
        handler: Handler, retry_count: int, max_retry_duration: float, attempts: int) -> None:
    handler.default = 503
    job = make_job("limited", retry_config={
        "retry_count": retry_count, "max_retry_duration": seconds(max_retry_duration),
        "min_backoff_duration": seconds(5), "max_backoff_duration": seconds(5)})
    clock.set(job.schedule_time.timestamp())
    handler.wait_for(1)
    assert _retry_until_idle(manual_emu, clock, handler, 5) == attempts


# 27 --------------------------------------------------------------------------------------------

def test_27_an_attempt_past_attempt_deadline_is_deadline_exceeded(
        manual_emu: Emulator, clock: ManualClock, make_job: Callable[..., Any],
        handler: Handler, client: Any) -> None:
    handler.delays["/slow"] = 30.0  # real seconds; the emulator's deadline is on its clock
    job = make_job("slow", path="/slow", attempt_deadline=seconds(15))
    assert job.attempt_deadline == timedelta(seconds=15)
    client.run_job(name=job.name)
    eventually(lambda: handler.in_flight == 1)
    clock.advance(15)
    eventually(lambda: client.get_job(name=job.name).status.code == _DEADLINE_EXCEEDED)
    assert "DEADLINE_EXCEEDED" in client.get_job(name=job.name).status.message
    handler.release()


# 28 --------------------------------------------------------------------------------------------

def test_28_english_like_schedules_fire(manual_emu: Emulator, clock: ManualClock,
                                        make_job: Callable[..., Any], handler: Handler,
                                        client: Any) -> None:
    job = make_job("every-five", "every 5 minutes")
    assert job.schedule_time == at("2026-03-27T00:05:00+00:00")
    clock.advance(300)
    [request] = handler.wait_for(1)
    assert request.headers["x-cloudscheduler-scheduletime"] == "2026-03-27T00:05:00Z"
    manual_emu.wait_idle()
    assert client.get_job(name=job.name).schedule_time == at("2026-03-27T00:10:00+00:00")
    weekly = make_job("weekly", "every monday 09:00", time_zone="Europe/Paris")
    assert weekly.schedule_time == at("2026-03-30T09:00:00+02:00")  # summer time by then


@pytest.mark.parametrize(("schedule", "first"), [
    ("1st,3rd monday of month 09:00", "2026-04-06T09:00:00+00:00"),
    ("every 2 hours from 10:00 to 14:00", "2026-03-27T10:00:00+00:00"),
    ("every 3 hours synchronized", "2026-03-27T03:00:00+00:00"),
    ("1,15 of month 09:00", "2026-04-01T09:00:00+00:00"),
    ("every day 00:00", "2026-03-28T00:00:00+00:00"),
    ("second sat of april,may 08:30", "2026-04-11T08:30:00+00:00"),
])
async def test_28_english_like_schedules_async(manual_emu: Emulator, handler: Handler,
                                               schedule: str, first: str) -> None:
    client = manual_emu.async_scheduler_client()
    job = await client.create_job(parent=manual_emu.location, job={
        "schedule": schedule, "http_target": {"uri": handler.url}})
    assert job.schedule_time == at(first)
    assert (await client.get_job(name=job.name)).schedule == schedule


@pytest.mark.parametrize(("schedule", "problem"), [
    ("every 5 weeks", "neither an interval nor a custom schedule"),
    ("every 7 hours synchronized", "divide 24 hours"),
    ("31 of february 09:00", "never fires"),
    ("every funday 09:00", "'funday' is not a weekday"),
    ("every monday 25:00", "not a time of day"),
])
def test_28_invalid_english_like_schedules_are_refused(make_job: Callable[..., Any],
                                                       schedule: str, problem: str) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=problem):
        make_job("bad", schedule)


# 30 --------------------------------------------------------------------------------------------

def test_30_an_error_inside_an_execution_is_a_failed_attempt_and_the_schedule_goes_on(
        manual_emu: Emulator, clock: ManualClock, make_job: Callable[..., Any],
        handler: Handler, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert manual_emu.server is not None
    sender = manual_emu.server.core.sender
    real_send = sender.send
    broken = [True]

    async def send_once_broken(*args: Any, **kwargs: Any) -> Any:
        if broken.pop() if broken else False:
            raise RuntimeError("injected emulator bug")
        return await real_send(*args, **kwargs)

    monkeypatch.setattr(sender, "send", send_once_broken)
    job = make_job("minutely", "* * * * *")
    clock.advance(60)
    manual_emu.wait_idle()
    failed = client.get_job(name=job.name)
    assert failed.status.code == _INTERNAL
    assert "injected emulator bug" in failed.status.message
    assert handler.received == []
    clock.advance(60)
    handler.wait_for(1)
    manual_emu.wait_idle()
    assert client.get_job(name=job.name).status.code == 0


@pytest.fixture
def next_fire_breaks_once(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Arm ``armed[0] = True`` to make the next schedule computation raise."""
    real = cron.next_fire
    armed = [False]

    def next_fire(*args: Any) -> Any:
        if armed[0]:
            armed[0] = False
            raise RuntimeError("injected schedule bug")
        return real(*args)

    monkeypatch.setattr(cron, "next_fire", next_fire)
    return armed


def test_30_a_dead_schedule_loop_is_restarted_by_update_job(
        manual_emu: Emulator, clock: ManualClock, make_job: Callable[..., Any],
        handler: Handler, client: Any, next_fire_breaks_once: list[bool]) -> None:
    assert manual_emu.server is not None
    job = make_job("fragile", "* * * * *")
    runner = manual_emu.server.scheduler.jobs[job.name]
    next_fire_breaks_once[0] = True
    clock.advance(60)  # the loop computes the following fire, which raises: the loop dies
    eventually(lambda: runner._loop is not None and runner._loop.done())
    assert handler.received == []
    client.update_job(job={"name": job.name, "description": "revived"},
                      update_mask=field_mask_pb2.FieldMask(paths=["description"]))
    clock.advance(60)
    handler.wait_for(1)
    manual_emu.wait_idle()
    assert not runner._loop.done()
