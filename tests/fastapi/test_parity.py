"""fastapi-gcp-tasks' behaviour kept: max_retries' count, one route per endpoint, the types of
CloudTasksHeaders, protobuf durations in the deadline hooks, the errors' base classes. Through
the emulator into the served app where a delivery is involved."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, Header, HTTPException
from google.cloud import tasks_v2
from google.protobuf import duration_pb2

from celery_gcp import Celery
from celery_gcp.emulator import ManualClock
from celery_gcp.exceptions import TaskArgumentError
from celery_gcp.fastapi import (
    CloudTasksHeaders,
    DelayedRouteBuilder,
    MissingParamError,
    ScheduledRouteBuilder,
    WrongTypeError,
    chained_hook,
    deadline_delayed_hook,
    deadline_scheduled_hook,
    max_retries,
    oidc_delayed_hook,
)

from .conftest import LOCATION, QUEUE, Site


def test_max_retries_2_runs_retry_counts_0_and_1_only(manual_site: Site,
                                                     clock: ManualClock) -> None:
    site = manual_site
    router = APIRouter(route_class=DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url))

    @router.post("/flaky", dependencies=[Depends(max_retries(2))])
    def flaky(headers: Annotated[CloudTasksHeaders, Depends()]) -> None:
        site.received.record("flaky", headers.retry_count)
        raise HTTPException(503, "down")

    site.api.include_router(router)
    flaky.delay()  # type: ignore[attr-defined]
    for _attempt in range(3):  # each retry is due within a second (the queue's backoff)
        site.emu.wait_idle()
        clock.advance(1)
    site.emu.wait_idle()
    # The third attempt (retry count 2) was answered 200 without running: nothing is left.
    assert site.emu.pending() == 0
    assert site.received.calls == [("flaky", 0), ("flaky", 1)]


def test_one_endpoint_on_two_routes_is_refused(site: Site) -> None:
    first = APIRouter(route_class=DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url))
    second = APIRouter(route_class=DelayedRouteBuilder(
        queue_path=QUEUE.replace("routes", "other"), base_url="http://elsewhere.invalid"))

    def shared(n: int) -> None:
        site.received.record("shared", n)

    first.post("/shared")(shared)
    with pytest.raises(ValueError, match=r"'shared' already has \.delay\(\) \(route '/shared'\)"):
        second.post("/again")(shared)
    with pytest.raises(ValueError, match=r"already has \.delay\(\)"):
        first.post("/twice")(shared)  # the same builder at another path
    app = Celery("proj")
    with pytest.raises(ValueError, match=r"already has \.delay\(\)"):
        APIRouter(route_class=app.TaskRoute).post("/as-task")(shared)
    # A router included twice is still one route per endpoint.
    site.api.include_router(first)
    site.api.include_router(first, prefix="/copy")
    shared.delay(n=1)  # type: ignore[attr-defined]
    assert site.received.wait_for(1) == [("shared", 1)]  # the first builder's queue and URL
    # .delay() and .scheduler() of two builders may share an endpoint, as before.
    scheduled = APIRouter(route_class=ScheduledRouteBuilder(location_path=LOCATION,
                                                            base_url=site.url))
    scheduled.post("/nightly")(shared)
    assert callable(shared.scheduler)  # type: ignore[attr-defined]


def test_cloud_tasks_headers_have_fastapi_gcp_tasks_types(site: Site) -> None:
    router = APIRouter(route_class=DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url))

    @router.post("/typed")
    def typed(headers: Annotated[CloudTasksHeaders, Depends()],
              x_cloudtasks_tasketa: Annotated[str | None, Header()] = None) -> None:
        if headers.retry_count == 0:
            raise HTTPException(503, "once")
        site.received.record("typed", (headers, x_cloudtasks_tasketa))

    site.api.include_router(router)
    typed.options(task_id="typed-1").delay()  # type: ignore[attr-defined]
    [(_, (headers, raw_eta))] = site.received.wait_for(1)
    assert (headers.queue_name, headers.task_name) == ("routes", "typed-1")
    # A 503 is a retry but not an execution ("does not include failures due to 5XX").
    assert (headers.retry_count, headers.execution_count) == (1, 0)
    assert headers.previous_response == 503
    assert isinstance(headers.previous_response, int)
    assert isinstance(headers.retry_reason, str)
    assert headers.eta == datetime.fromtimestamp(float(raw_eta))  # naive, local time
    assert headers.eta.tzinfo is None

    # Called directly (not by Cloud Tasks): empty names, zeros and the epoch.
    @site.api.post("/direct")
    def direct(headers: Annotated[CloudTasksHeaders, Depends()]) -> None:
        site.received.record("direct", headers)

    assert httpx.post(f"{site.url}/direct").status_code == 200
    got = site.received.wait_for(2)[1][1]
    assert (got.queue_name, got.task_name, got.retry_reason) == ("", "", "")
    assert (got.retry_count, got.execution_count, got.previous_response) == (0, 0, 0)
    assert got.eta == datetime.fromtimestamp(0)


def test_deadline_hooks_take_a_protobuf_duration(site: Site) -> None:
    """As fastapi-gcp-tasks' example app passes one."""
    hook = chained_hook(
        oidc_delayed_hook(tasks_v2.OidcToken(service_account_email="t@p.iam.gserviceaccount.com",
                                             audience=site.url)),
        deadline_delayed_hook(duration=duration_pb2.Duration(seconds=1800)))
    router = APIRouter(route_class=DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url,
                                                       pre_create_hook=hook))

    @router.post("/long")
    def long() -> None:
        site.received.record("long", None)

    site.api.include_router(router)
    later = long.options(countdown=3600).delay()  # type: ignore[attr-defined]
    task = site.emu.tasks_client().get_task(
        request={"name": later.name, "response_view": tasks_v2.Task.View.FULL})
    assert task.dispatch_deadline == timedelta(minutes=30)
    long.delay()  # type: ignore[attr-defined]
    assert site.received.wait_for(1) == [("long", None)]

    jobs = APIRouter(route_class=ScheduledRouteBuilder(
        location_path=LOCATION, base_url=site.url,
        pre_create_hook=deadline_scheduled_hook(duration_pb2.Duration(seconds=900))))

    @jobs.post("/sweep")
    def sweep() -> None: ...

    job = sweep.scheduler(name="sweep", schedule="0 3 * * *").schedule()  # type: ignore[attr-defined]
    assert job.attempt_deadline == timedelta(minutes=15)
    with pytest.raises(ValueError, match="outside the 0:00:15 to 0:30:00"):
        deadline_delayed_hook(duration_pb2.Duration(seconds=3600))
    with pytest.raises(TypeError, match=r"a datetime\.timedelta or a google\.protobuf Duration"):
        deadline_delayed_hook(1800)  # type: ignore[arg-type]


def test_route_call_errors_keep_fastapi_gcp_tasks_base_classes(site: Site) -> None:
    router = APIRouter(route_class=DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url))

    @router.post("/typed/{n}")
    def typed(n: int) -> None: ...

    for error in (MissingParamError, WrongTypeError):
        assert issubclass(error, ValueError)
        assert issubclass(error, TaskArgumentError)
        assert issubclass(error, TypeError)
    with pytest.raises(ValueError, match="missing required argument"):
        typed.delay()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="valid integer"):
        typed.delay(n="many")  # type: ignore[attr-defined]
    assert list(site.emu.tasks_client().list_tasks(parent=QUEUE)) == []
