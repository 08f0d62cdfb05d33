"""The ``client`` of the route builders: a client of the wrong kind is refused when the
builder is made (naming the builder to use), a mock is a client and not a factory, and a
factory's client is checked when it is made; through the emulator into the served app."""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock, MagicMock

import pytest
from fastapi import APIRouter
from google.cloud import scheduler_v1, tasks_v2

from celery_gcp.fastapi import (
    AsyncDelayedRouteBuilder,
    AsyncScheduledRouteBuilder,
    DelayedRouteBuilder,
    ScheduledRouteBuilder,
    task_default_options,
)

from .conftest import LOCATION, QUEUE, Site


def hello_route(site: Site, route_class: Any) -> Any:
    """A served route of ``route_class`` that records its calls."""
    router = APIRouter(route_class=route_class)

    @router.post("/hello/{n}")
    async def hello(n: int) -> None:
        site.received.record("hello", n)

    site.api.include_router(router)
    return hello


async def test_an_async_client_is_refused_by_the_sync_builders(site: Site) -> None:
    tasks = site.emu.async_tasks_client()
    with pytest.raises(TypeError, match=r"is an async client.*use AsyncDelayedRouteBuilder"):
        DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url, client=tasks)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="use AsyncDelayedRouteBuilder"):
        DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url, client=AsyncMock())
    scheduler = site.emu.async_scheduler_client()
    with pytest.raises(TypeError, match="use AsyncScheduledRouteBuilder"):
        ScheduledRouteBuilder(location_path=LOCATION, base_url=site.url, client=scheduler)  # type: ignore[arg-type]
    # Per call too: .options(client=...) and task_default_options(client=...).
    hello = hello_route(site, DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url))
    with pytest.raises(TypeError, match="use AsyncDelayedRouteBuilder"):
        hello.options(client=tasks)
    router = APIRouter(route_class=DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url))

    @router.post("/defaulted")
    @task_default_options(client=tasks)
    def defaulted() -> None: ...

    with pytest.raises(TypeError, match="use AsyncDelayedRouteBuilder"):
        defaulted.delay()  # type: ignore[attr-defined]
    assert list(site.emu.tasks_client().list_tasks(parent=QUEUE)) == []


def test_a_sync_client_is_refused_by_the_async_builders(site: Site) -> None:
    with pytest.raises(TypeError, match=r"is a sync client.*use DelayedRouteBuilder"):
        AsyncDelayedRouteBuilder(queue_path=QUEUE, base_url=site.url,
                                 client=site.emu.tasks_client())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="use DelayedRouteBuilder"):
        AsyncDelayedRouteBuilder(queue_path=QUEUE, base_url=site.url, client=MagicMock())
    with pytest.raises(TypeError, match="use ScheduledRouteBuilder"):
        AsyncScheduledRouteBuilder(location_path=LOCATION, base_url=site.url,
                                   client=site.emu.scheduler_client())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not a CloudTasksClient \(it has no create_task"):
        DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url, client="emulator")  # type: ignore[arg-type]


async def test_a_factory_making_the_wrong_kind_fails_at_the_first_delay(site: Site) -> None:
    hello = hello_route(site, AsyncDelayedRouteBuilder(
        queue_path=QUEUE, base_url=site.url, client=site.emu.tasks_client))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="use DelayedRouteBuilder"):
        await hello.delay(1)
    assert list(site.emu.tasks_client().list_tasks(parent=QUEUE)) == []


def test_a_mock_of_the_client_is_a_client_not_a_factory(site: Site) -> None:
    """As fastapi-gcp-tasks' users' tests pass one: MagicMock(spec=CloudTasksClient)."""
    client = MagicMock(spec=tasks_v2.CloudTasksClient, wraps=site.emu.tasks_client())
    hello = hello_route(site, DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url,
                                                  client=client, auto_create_queue=False))
    hello.delay(n=1)
    request = client.create_task.call_args.kwargs["request"]
    assert request.task.http_request.url == f"{site.url}/hello/1"
    assert site.received.wait_for(1) == [("hello", 1)]
    assert client.call_count == 0  # never called as a factory
    # Without a real client behind it, as in their unit tests.
    bare = MagicMock(spec=tasks_v2.CloudTasksClient)
    hello.options(client=bare).delay(n=2)
    assert bare.create_task.call_args.kwargs["request"].task.http_request.url == (
        f"{site.url}/hello/2")
    plain = MagicMock()  # no spec: still a client (it has create_task)
    hello.options(client=plain).delay(n=3)
    assert plain.create_task.call_count == 1
    assert plain.call_count == 0


async def test_an_async_mock_of_the_client_is_a_client(site: Site) -> None:
    client = MagicMock(spec=tasks_v2.CloudTasksAsyncClient, wraps=site.emu.async_tasks_client())
    hello = hello_route(site, AsyncDelayedRouteBuilder(queue_path=QUEUE, base_url=site.url,
                                                       client=client))
    await hello.delay(n=4)
    assert client.create_task.await_args.kwargs["request"].task.http_request.url == (
        f"{site.url}/hello/4")
    assert site.received.wait_for(1) == [("hello", 4)]
    assert client.call_count == 0


def test_a_mock_scheduler_client_is_a_client(site: Site) -> None:
    client = MagicMock(spec=scheduler_v1.CloudSchedulerClient, wraps=site.emu.scheduler_client())
    router = APIRouter(route_class=ScheduledRouteBuilder(location_path=LOCATION,
                                                         base_url=site.url, client=client))

    @router.post("/sweep")
    def sweep() -> None:
        site.received.record("sweep", None)

    site.api.include_router(router)
    sweep.scheduler(name="sweep", schedule="0 3 * * *").schedule()  # type: ignore[attr-defined]
    job = client.create_job.call_args.kwargs["job"]
    assert job.http_target.uri == f"{site.url}/sweep"
    assert client.call_count == 0
    site.emu.scheduler_client().run_job(name=job.name)
    assert site.received.wait_for(1) == [("sweep", None)]


def test_a_function_is_a_factory_called_on_the_first_delay(site: Site) -> None:
    made: list[int] = []

    def factory() -> Any:
        made.append(1)
        return site.emu.tasks_client()

    hello = hello_route(site, DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url,
                                                  client=factory))
    assert made == []  # not at import
    hello.delay(5)
    hello.delay(6)
    assert sorted(site.received.wait_for(2)) == [("hello", 5), ("hello", 6)]
    assert made == [1]
