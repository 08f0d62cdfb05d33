"""Interop: the same dispatch tests against celery_gcp's emulator and gcloud-tasks-emulator.

The behaviours both implement run against both servers, so the official client code is never
tested against our own server alone. The third-party emulator runs from its own virtualenv (see
``gcloud_tasks_emulator.py``); the clients are the ``google-cloud-tasks`` of the project's
environment, on insecure gRPC channels. Each test uses a fresh queue: the third-party emulator
cannot reuse a deleted queue's name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import grpc
import pytest
from fastapi import APIRouter, FastAPI, Header, Query
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import (
    CloudTasksGrpcAsyncIOTransport,
    CloudTasksGrpcTransport,
)
from pydantic import BaseModel

from celery_gcp.emulator import Emulator
from celery_gcp.fastapi import DelayedRouteBuilder
from celery_gcp.testing import serve

from .gcloud_tasks_emulator import LOOPBACK, GcloudTasksEmulator, unique_queue_id
from .http_target import RecordingHTTPTarget

pytestmark = pytest.mark.interop

PROJECT = "interop-project"
LOCATION = "europe-west1"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
DELIVERY_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def our_emulator() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(params=["celery_gcp", "gcloud-tasks-emulator"])
def address(request: pytest.FixtureRequest) -> str:
    """The gRPC address of each emulator in turn."""
    if request.param == "celery_gcp":
        return str(request.getfixturevalue("our_emulator").address)
    return str(request.getfixturevalue("gcloud_tasks_emulator").address)


def _client(address: str) -> tasks_v2.CloudTasksClient:
    channel = grpc.insecure_channel(address)
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


@pytest.fixture
def client(address: str) -> Iterator[tasks_v2.CloudTasksClient]:
    with _client(address) as cloud_tasks:
        yield cloud_tasks


@pytest.fixture
def their_client(
    gcloud_tasks_emulator: GcloudTasksEmulator,
) -> Iterator[tasks_v2.CloudTasksClient]:
    with _client(gcloud_tasks_emulator.address) as cloud_tasks:
        yield cloud_tasks


@pytest.fixture
def queue(client: tasks_v2.CloudTasksClient) -> Iterator[str]:
    """A queue created for this test only; deleted afterwards (stops its dispatch thread)."""
    name = client.queue_path(PROJECT, LOCATION, unique_queue_id())
    created = client.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=name))
    assert created.name == name
    assert created.state == tasks_v2.Queue.State.RUNNING
    yield name
    client.delete_queue(name=name)


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def assert_queue_header(value: str | None, queue: str) -> None:
    # Cloud Tasks sends the queue id; gcloud-tasks-emulator 0.6.2 sends the full queue path.
    assert value in (queue, short(queue))


@pytest.mark.parametrize(
    "method", [tasks_v2.HttpMethod.POST, tasks_v2.HttpMethod.PUT], ids=["POST", "PUT"]
)
def test_http_task_is_dispatched_to_its_url(
    client: tasks_v2.CloudTasksClient, queue: str, method: tasks_v2.HttpMethod
) -> None:
    body = b'{"x": 2, "y": 3}'
    with RecordingHTTPTarget() as target:
        task = client.create_task(
            parent=queue,
            task=tasks_v2.Task(
                http_request=tasks_v2.HttpRequest(
                    url=target.url("/_tasks/proj.add"),
                    http_method=method,
                    headers={"Content-Type": "application/json", "X-Celery-Id": "id-1"},
                    body=body,
                )
            ),
        )
        [received] = target.wait_for(1, DELIVERY_TIMEOUT)

    assert task.name.startswith(f"{queue}/tasks/")
    assert received.method == method.name
    assert received.path == "/_tasks/proj.add"
    assert received.body == body
    assert received.header("Content-Type") == "application/json"
    assert received.header("X-Celery-Id") == "id-1"
    assert received.header("X-CloudTasks-TaskName") == short(task.name)
    assert_queue_header(received.header("X-CloudTasks-QueueName"), queue)
    assert received.header("X-CloudTasks-TaskRetryCount") == "0"


def test_named_task_keeps_its_name(client: tasks_v2.CloudTasksClient, queue: str) -> None:
    name = f"{queue}/tasks/celery-id-0f3a"
    with RecordingHTTPTarget() as target:
        task = client.create_task(
            parent=queue,
            task=tasks_v2.Task(
                name=name, http_request=tasks_v2.HttpRequest(url=target.url("/t"), body=b"{}")
            ),
        )
        [received] = target.wait_for(1, DELIVERY_TIMEOUT)

    assert task.name == name
    assert received.method == "POST"  # the default method
    assert received.header("X-CloudTasks-TaskName") == "celery-id-0f3a"


def test_scheduled_task_waits_for_its_schedule_time(
    client: tasks_v2.CloudTasksClient, queue: str
) -> None:
    eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    with RecordingHTTPTarget() as target:
        client.create_task(
            parent=queue,
            task=tasks_v2.Task(
                schedule_time=eta, http_request=tasks_v2.HttpRequest(url=target.url("/t"))
            ),
        )
        [received] = target.wait_for(1, DELIVERY_TIMEOUT)

    assert received.received_at >= eta.timestamp()
    eta_header = received.header("X-CloudTasks-TaskETA")
    assert eta_header is not None
    assert float(eta_header) == pytest.approx(eta.timestamp(), abs=1e-3)


def test_app_engine_task_goes_to_the_configured_target(
    gcloud_tasks_emulator: GcloudTasksEmulator, their_client: tasks_v2.CloudTasksClient
) -> None:
    # Only the third-party emulator dispatches App Engine tasks (ours refuses them clearly).
    emulator, client = gcloud_tasks_emulator, their_client
    queue = client.queue_path(PROJECT, LOCATION, unique_queue_id())
    client.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=queue))
    with RecordingHTTPTarget(host=emulator.target_host, port=emulator.target_port) as target:
        task = client.create_task(
            parent=queue,
            task=tasks_v2.Task(
                app_engine_http_request=tasks_v2.AppEngineHttpRequest(
                    relative_uri="/_tasks/proj.add?x=1", body=b"ae-body"
                )
            ),
        )
        [received] = target.wait_for(1, DELIVERY_TIMEOUT)

    assert received.method == "POST"
    assert received.path == "/_tasks/proj.add?x=1"
    assert received.body == b"ae-body"
    assert received.header("X-AppEngine-TaskName") == short(task.name)
    assert_queue_header(received.header("X-AppEngine-QueueName"), queue)


async def test_async_client_http_task(address: str) -> None:
    # The aio channel binds to the running loop, so it is made here, inside the test.
    channel = grpc.aio.insecure_channel(address)
    transport = CloudTasksGrpcAsyncIOTransport(channel=channel)
    async with tasks_v2.CloudTasksAsyncClient(transport=transport) as client:
        queue = client.queue_path(PROJECT, LOCATION, unique_queue_id("interop-aio"))
        await client.create_queue(parent=PARENT, queue=tasks_v2.Queue(name=queue))
        try:
            listed = [q.name async for q in await client.list_queues(parent=PARENT)]
            assert queue in listed
            with RecordingHTTPTarget() as target:
                task = await client.create_task(
                    parent=queue,
                    task=tasks_v2.Task(
                        http_request=tasks_v2.HttpRequest(
                            url=target.url("/_tasks/proj.mul"),
                            http_method=tasks_v2.HttpMethod.PATCH,
                            headers={"Content-Type": "application/json"},
                            body=b'{"x": 6, "y": 7}',
                        )
                    ),
                )
                [received] = await asyncio.to_thread(target.wait_for, 1, DELIVERY_TIMEOUT)
        finally:
            await client.delete_queue(name=queue)

    assert received.method == "PATCH"
    assert received.path == "/_tasks/proj.mul"
    assert received.body == b'{"x": 6, "y": 7}'
    assert received.header("X-CloudTasks-TaskName") == short(task.name)
    assert_queue_header(received.header("X-CloudTasks-QueueName"), queue)


def _listening_tcp_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket that process ``pid`` has in LISTEN state."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    listening = set()
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: TCP_LISTEN
                continue
            hex_address, hex_port = local.split(":")
            raw = bytes.fromhex(hex_address)
            # /proc prints the address as 32-bit words in host (little-endian) order.
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            address = ipaddress.ip_address(packed)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped  # grpc listens on ::ffff:127.0.0.1 for 127.0.0.1
            listening.add((str(address), int(hex_port, 16)))
    return listening


def test_emulator_listens_on_loopback_only(gcloud_tasks_emulator: GcloudTasksEmulator) -> None:
    listening = _listening_tcp_addresses(gcloud_tasks_emulator.pid)
    assert all(ipaddress.ip_address(address).is_loopback for address, _ in listening)
    assert listening == {(LOOPBACK, gcloud_tasks_emulator.port)}


def test_celery_gcp_transport_end_to_end_through_gcloud_tasks_emulator(
        gcloud_tasks_emulator: GcloudTasksEmulator, their_client: tasks_v2.CloudTasksClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Our transport and worker, with their emulator between them (a fresh queue)."""
    import threading

    from fastapi import FastAPI

    from celery_gcp import Celery, group
    from celery_gcp.testing import serve

    queue_id = unique_queue_id()
    their_client.create_queue(
        parent=PARENT, queue=tasks_v2.Queue(name=their_client.queue_path(PROJECT, LOCATION,
                                                                         queue_id)))
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", gcloud_tasks_emulator.address)
    app = Celery("interop", gcp_project=PROJECT, gcp_location=LOCATION,
                 task_default_queue=queue_id)
    seen: list[tuple[int, str | None]] = []
    ran = threading.Condition()

    @app.task(bind=True, name="interop.add")
    def add(self: object, x: int, y: int) -> int:
        with ran:
            seen.append((x + y, self.request.cloudtasks.task_name))  # type: ignore[attr-defined]
            ran.notify_all()
        return x + y

    def wait_for(count: int) -> list[tuple[int, str | None]]:
        with ran:
            assert ran.wait_for(lambda: len(seen) >= count, DELIVERY_TIMEOUT), seen
            return list(seen)

    api = FastAPI()
    api.include_router(app.router)
    with serve(api) as url:
        app.conf.task_base_url = url
        result = add.delay(20, 22)
        assert wait_for(1) == [(42, result.id)]
        # No BatchCreateTasks there: a group is sent one CreateTask at a time instead.
        results = group(add.s(i, 100) for i in range(5)).apply_async()
        runs = wait_for(6)
    assert sorted(runs[1:]) == sorted((i + 100, r.id) for i, r in enumerate(results))


class Item(BaseModel):
    name: str


def test_route_builder_task_reaches_the_route(address: str,
                                              client: tasks_v2.CloudTasksClient) -> None:
    # A FastAPI route's .delay() (celery_gcp.fastapi) on either server: the queue is made on
    # the first send, and the route receives the values sent.
    received: list[object] = []
    done = threading.Event()
    api = FastAPI()
    with serve(api) as url:
        queue = client.queue_path(PROJECT, LOCATION, unique_queue_id("interop-route"))
        router = APIRouter(route_class=DelayedRouteBuilder(queue_path=queue, base_url=url,
                                                           client=client))

        @router.put("/items/{item_id}")
        def put(item_id: str, item: Item, tags: Annotated[list[str], Query()],
                x_tag: Annotated[str, Header()]) -> None:
            received.append((item_id, item, tags, x_tag))
            done.set()

        api.include_router(router)
        put.delay("a b?c", item={"name": "n"}, tags=["x", "y"], x_tag="t")  # type: ignore[attr-defined]
        assert done.wait(DELIVERY_TIMEOUT)
    assert received == [("a b?c", Item(name="n"), ["x", "y"], "t")]
