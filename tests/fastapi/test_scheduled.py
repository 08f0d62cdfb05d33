"""Routes on Cloud Scheduler: jobs made, updated in place, converging, run into the real app."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Annotated, Any

import grpc
import pytest
from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel

from celery_gcp.cron import InvalidSchedule
from celery_gcp.fastapi import (
    AsyncScheduledRouteBuilder,
    CloudSchedulerHeaders,
    ScheduledRouteBuilder,
    deadline_scheduled_hook,
)

from .conftest import LOCATION, Site


class Report(BaseModel):
    kind: str
    hours: int


def scheduled(site: Site, **builder: Any) -> Any:
    router = APIRouter(route_class=ScheduledRouteBuilder(location_path=LOCATION,
                                                         base_url=site.url, **builder))

    @router.post("/digest/{team}")
    def digest(team: str, report: Report, x_mode: Annotated[str, Header()] = "full",
               job: Annotated[CloudSchedulerHeaders, Depends()] = None) -> None:  # type: ignore[assignment]
        site.received.record("digest", (team, report, x_mode, job.is_scheduled, job.job_name,
                                        job.schedule_time is not None))

    site.api.include_router(router, prefix="/v1")
    return digest


def test_job_runs_the_route_with_its_arguments(site: Site) -> None:
    digest = scheduled(site)
    job = digest.scheduler(name="daily-digest", schedule="0 7 * * *", time_zone="Europe/Paris")
    made = job.schedule("core team", report={"kind": "sales", "hours": 24}, x_mode="short")
    assert made.name == job.job_id == f"{LOCATION}/jobs/daily-digest"
    assert made.http_target.uri == f"{site.url}/v1/digest/core%20team"
    assert made.time_zone == "Europe/Paris"
    site.emu.scheduler_client().run_job(name=job.job_id)
    assert site.received.wait_for(1) == [
        ("digest", ("core team", Report(kind="sales", hours=24), "short", True, "daily-digest",
                    True))]


def test_a_changed_job_is_updated_in_place(site: Site) -> None:
    digest = scheduled(site)
    client = site.emu.scheduler_client()
    digest.scheduler(name="d", schedule="0 7 * * *").schedule("a", report={"kind": "k",
                                                                           "hours": 1})
    # Deleting (and re-creating) would fail: the update must be in place.
    site.emu.faults.fail_rpc("DeleteJob", grpc.StatusCode.INTERNAL, times=10)
    job = digest.scheduler(name="d", schedule="30 8 * * 1-5", time_zone="Asia/Tokyo",
                           pre_create_hook=deadline_scheduled_hook(timedelta(minutes=2)))
    job.schedule("b", report={"kind": "k", "hours": 2})
    [current] = list(client.list_jobs(parent=LOCATION))
    assert (current.schedule, current.time_zone) == ("30 8 * * 1-5", "Asia/Tokyo")
    assert current.http_target.uri.endswith("/v1/digest/b")
    assert current.http_target.body == b'{"kind":"k","hours":2}'
    assert current.attempt_deadline == timedelta(minutes=2)


def test_instances_scheduling_at_once_converge(site: Site) -> None:
    digest = scheduled(site)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def put(hours: int) -> None:
        try:
            start.wait()
            digest.scheduler(name="same", schedule="*/5 * * * *").schedule(
                "t", report={"kind": "k", "hours": hours})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(h,)) for h in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [j.name for j in site.emu.scheduler_client().list_jobs(parent=LOCATION)] == [
        f"{LOCATION}/jobs/same"]


def test_delete_and_bad_input(site: Site) -> None:
    digest = scheduled(site)
    job = digest.scheduler(name="gone", schedule="0 0 1 1 *")
    job.schedule("t", report={"kind": "k", "hours": 1})
    assert job.delete() is True
    from google.api_core.exceptions import NotFound

    assert isinstance(job.delete(), NotFound)
    with pytest.raises(InvalidSchedule):
        digest.scheduler(name="x", schedule="61 * * * *")
    with pytest.raises(ValueError, match="job name 'a b'"):
        digest.scheduler(name="a b", schedule="* * * * *")
    with pytest.raises(ValueError, match="'Mars/Base' is not an IANA zone"):
        digest.scheduler(name="x", schedule="* * * * *", time_zone="Mars/Base")
    with pytest.raises(TypeError, match=r"Unknown option.*for SchedulerOptions: countdown"):
        digest.scheduler(name="x", schedule="* * * * *", countdown=3)
    with pytest.raises(TypeError, match="missing required argument"):
        digest.scheduler(name="x", schedule="* * * * *").schedule("t")
    assert list(site.emu.scheduler_client().list_jobs(parent=LOCATION)) == []


async def test_async_builder(site: Site) -> None:
    router = APIRouter(route_class=AsyncScheduledRouteBuilder(
        location_path=LOCATION, callback_base_url=site.url,
        client=site.emu.async_scheduler_client))

    @router.get("/ping")
    async def ping(n: int) -> None:
        site.received.record("ping", n)

    site.api.include_router(router)
    job = ping.scheduler(name="ping", schedule="* * * * *")  # type: ignore[attr-defined]
    made = await job.schedule(n=3)
    assert made.http_target.uri == f"{site.url}/ping?n=3"
    assert made.http_target.body == b""
    site.emu.scheduler_client().run_job(name=job.job_id)
    assert site.received.wait_for(1) == [("ping", 3)]
    assert await job.delete() is True
