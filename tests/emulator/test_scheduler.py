"""Cloud Scheduler conformance: the official client against the emulator, on a manual clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import scheduler_v1
from google.protobuf import duration_pb2, field_mask_pb2

from celery_gcp.emulator import Emulator, ManualClock

from .conftest import Handler


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def seconds(value: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(int(value * 1e9))
    return out


@pytest.fixture
def make_job(manual_emu: Emulator, handler: Handler) -> Callable[..., Any]:
    client = manual_emu.scheduler_client()

    def make(name: str, schedule: str, time_zone: str = "", path: str = "/job",
             **fields: Any) -> Any:
        job = {"name": f"{manual_emu.location}/jobs/{name}", "schedule": schedule,
               "time_zone": time_zone,
               "http_target": {"uri": f"{handler.url}{path}", "body": b"{}",
                               **fields.pop("http", {})}, **fields}
        return client.create_job(parent=manual_emu.location, job=job)

    return make


def test_job_lifecycle_and_defaults(manual_emu: Emulator, make_job: Callable[..., Any]) -> None:
    client = manual_emu.scheduler_client()
    job = make_job("hourly", "0 * * * *")
    assert job.state == scheduler_v1.Job.State.ENABLED
    assert job.time_zone == "Etc/UTC"
    assert job.attempt_deadline == timedelta(minutes=3)
    assert job.schedule_time == datetime(2026, 3, 27, 1, tzinfo=UTC)
    assert client.get_job(name=job.name).schedule == "0 * * * *"
    make_job("daily", "0 0 * * *")
    assert len(list(client.list_jobs(parent=manual_emu.location))) == 2
    with pytest.raises(exceptions.AlreadyExists):
        make_job("hourly", "0 * * * *")
    client.delete_job(name=job.name)
    with pytest.raises(exceptions.NotFound):
        client.get_job(name=job.name)


@pytest.mark.parametrize(("fields", "problem"), [
    ({"schedule": "* * * *"}, "field"),
    ({"schedule": "0 9 * * MON", "time_zone": "Mars/Base"}, "Mars/Base"),
    ({"retry_config": {"retry_count": 6}}, "retry_count 6"),
    ({"attempt_deadline": seconds(10)}, "attempt_deadline"),
    ({"http_target": {"uri": "http://127.0.0.1:1/", "http_method": "GET", "body": b"{}"}},
     "body is allowed only with POST, PUT or PATCH"),
])
def test_invalid_jobs_are_refused(manual_emu: Emulator, handler: Handler,
                                  fields: dict[str, Any], problem: str) -> None:
    job = {"name": f"{manual_emu.location}/jobs/bad", "schedule": "* * * * *",
           "http_target": {"uri": handler.url}, **fields}
    with pytest.raises(exceptions.InvalidArgument, match=problem):
        manual_emu.scheduler_client().create_job(parent=manual_emu.location, job=job)


def test_fires_next_monday_0900_paris_across_dst(manual_emu: Emulator, clock: ManualClock,
                                                 make_job: Callable[..., Any],
                                                 handler: Handler) -> None:
    # The clock starts on Friday 2026-03-27; Paris moves to summer time on Sunday the 29th.
    job = make_job("weekly", "0 9 * * MON", "Europe/Paris",
                   http={"headers": {"X-Custom": "1"}})
    assert job.schedule_time == datetime(2026, 3, 30, 7, tzinfo=UTC)  # 09:00 CEST
    clock.set(at("2026-03-30T06:59:59+00:00"))
    manual_emu.wait_idle()
    assert handler.received == []
    clock.set(at("2026-03-30T07:00:00+00:00"))
    [request] = handler.wait_for(1)
    h = request.headers
    assert h["user-agent"] == "Google-Cloud-Scheduler"
    assert h["x-cloudscheduler"] == "true"
    assert h["x-cloudscheduler-jobname"] == "weekly"
    assert h["x-cloudscheduler-scheduletime"] == "2026-03-30T07:00:00Z"
    assert h["x-custom"] == "1"
    manual_emu.wait_idle()
    updated = manual_emu.scheduler_client().get_job(name=job.name)
    assert updated.schedule_time == datetime(2026, 4, 6, 7, tzinfo=UTC)
    assert updated.last_attempt_time.timestamp() == pytest.approx(clock.now())
    assert updated.status.code == 0


def test_paused_jobs_do_not_fire_and_run_fires_now(manual_emu: Emulator, clock: ManualClock,
                                                   make_job: Callable[..., Any],
                                                   handler: Handler) -> None:
    client = manual_emu.scheduler_client()
    job = make_job("paused", "*/5 * * * *")
    client.pause_job(name=job.name)
    clock.advance(3600)
    manual_emu.wait_idle()
    assert handler.received == []
    assert client.get_job(name=job.name).state == scheduler_v1.Job.State.PAUSED
    client.run_job(name=job.name)  # fires now, even paused
    handler.wait_for(1)
    resumed = client.resume_job(name=job.name)
    assert resumed.schedule_time.timestamp() == pytest.approx(clock.now() + 300, abs=300)
    assert resumed.schedule_time.timestamp() > clock.now()


def test_failed_attempts_are_retried_with_backoff(manual_emu: Emulator, clock: ManualClock,
                                                  make_job: Callable[..., Any],
                                                  handler: Handler) -> None:
    handler.default = 503
    job = make_job("retried", "0 12 * * *", retry_config={
        "retry_count": 2, "min_backoff_duration": seconds(5),
        "max_backoff_duration": seconds(60), "max_doublings": 3})
    clock.set(job.schedule_time.timestamp())
    handler.wait_for(1)
    for delay, count in [(5, 2), (10, 3)]:
        manual_emu.wait_idle()  # the execution waits for its backoff: not busy
        clock.advance(delay)
        handler.wait_for(count)
    manual_emu.wait_idle()  # the last answer is in before time moves past its deadline
    clock.advance(3600)
    manual_emu.wait_idle()
    assert len(handler.received) == 3  # retry_count 2: three attempts in all
    failed = manual_emu.scheduler_client().get_job(name=job.name)
    assert failed.status.code == grpc.StatusCode.UNAVAILABLE.value[0]


def test_update_with_a_field_mask_reschedules(manual_emu: Emulator,
                                              make_job: Callable[..., Any]) -> None:
    client = manual_emu.scheduler_client()
    job = make_job("changing", "0 * * * *")
    updated = client.update_job(
        job={"name": job.name, "schedule": "30 6 * * *", "description": "new"},
        update_mask=field_mask_pb2.FieldMask(paths=["schedule"]))
    assert updated.schedule == "30 6 * * *"
    assert updated.description == ""
    assert updated.schedule_time == datetime(2026, 3, 27, 6, 30, tzinfo=UTC)
    with pytest.raises(exceptions.InvalidArgument):
        client.update_job(job={"name": job.name, "schedule": "bad"},
                          update_mask=field_mask_pb2.FieldMask(paths=["schedule"]))


def test_executions_never_overlap(manual_emu: Emulator, clock: ManualClock,
                                  make_job: Callable[..., Any], handler: Handler) -> None:
    handler.delays["/slow"] = 0.2
    make_job("minutely", "* * * * *", path="/slow")
    clock.advance(180)  # three fire times pass at once: they run one after the other
    received = handler.wait_for(3)
    assert handler.max_in_flight == 1
    assert [r.headers["x-cloudscheduler-scheduletime"] for r in received] == [
        "2026-03-27T00:01:00Z", "2026-03-27T00:02:00Z", "2026-03-27T00:03:00Z"]


def test_job_oidc_token(manual_emu: Emulator, clock: ManualClock, make_job: Callable[..., Any],
                        handler: Handler) -> None:
    import google.auth.transport.requests
    import requests
    from google.oauth2 import id_token

    email = "scheduler@p.iam.gserviceaccount.com"
    job = make_job("secure", "* * * * *",
                   http={"oidc_token": {"service_account_email": email}})
    manual_emu.scheduler_client().run_job(name=job.name)
    [request] = handler.wait_for(1)
    token = request.headers["authorization"].removeprefix("Bearer ")
    with requests.Session() as session:
        claims = id_token.verify_token(
            token, google.auth.transport.requests.Request(session=session),
            audience=f"{handler.url}/job", certs_url=manual_emu.certs_url,
            clock_skew_in_seconds=int(abs(time.time() - clock.now())) + 60)
    assert claims["email"] == email


async def test_async_scheduler_client(manual_emu: Emulator, handler: Handler) -> None:
    client = manual_emu.async_scheduler_client()
    job = await client.create_job(parent=manual_emu.location, job={
        "name": f"{manual_emu.location}/jobs/async", "schedule": "0 0 1 1 *",
        "http_target": {"uri": handler.url}})
    assert (await client.get_job(name=job.name)).schedule == "0 0 1 1 *"


def test_a_fired_job_is_pending_until_its_call_is_answered(emu: Emulator) -> None:
    import threading

    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from celery_gcp.testing import serve

    called, answer = threading.Event(), threading.Event()

    def target(request: Request) -> Response:  # a sync endpoint: runs in the thread pool
        called.set()
        answer.wait(30)
        return Response(status_code=200)

    client = emu.scheduler_client()
    with serve(Starlette(routes=[Route("/job", target, methods=["POST"])])) as url:
        job = client.create_job(parent=emu.location, job={
            "name": f"{emu.location}/jobs/held", "schedule": "0 0 1 1 *",
            "http_target": {"uri": f"{url}/job"}})
        assert emu.pending() == 0
        try:
            client.run_job(name=job.name)
            assert emu.pending() == 1  # from RunJob on, before the call is made
            assert called.wait(30)
            # No queue holds a task, but the fired job still waits for its answer.
            assert emu.pending() == 1
            status = httpx.get(f"{emu.http_url}/status", timeout=10).json()
            assert status["pending"] == 1
            assert [j["executionsInFlight"] for j in status["jobs"]] == [1]
        finally:
            answer.set()
        emu.wait_idle()
        assert emu.pending() == 0
        assert httpx.get(f"{emu.http_url}/status", timeout=10).json()["pending"] == 0
