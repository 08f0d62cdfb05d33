"""Cloud Tasks' limits in time and size, against the docs of tasks_v2 (DeleteQueue, CreateQueue,
ListTasks), through the official sync and async clients over gRPC, on the manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2

from celery_gcp.emulator import Emulator, ManualClock

from .conftest import Handler

Make = Callable[..., Any]

DAY = 86400.0


def task(url: str, **fields: Any) -> dict[str, Any]:
    return {"http_request": {"url": url}, **fields}


def test_a_deleted_queues_name_cannot_be_used_again_for_three_days(
        manual_emu: Emulator, clock: ManualClock) -> None:
    # "you may be prevented from creating a new queue with the same name as the deleted queue
    # for a tombstone window of up to 3 days" (DeleteQueue).
    parent = manual_emu.location
    name = f"{parent}/queues/reused"
    client = manual_emu.tasks_client()
    client.create_queue(parent=parent, queue={"name": name})
    client.delete_queue(name=name)
    # The message names the queue and when it is free: three days on the emulator's clock.
    with pytest.raises(exceptions.FailedPrecondition,
                       match=r"queues/reused .*from 2026-03-30T00:00:00\+00:00"):
        client.create_queue(parent=parent, queue={"name": name})
    with pytest.raises(exceptions.FailedPrecondition):  # UpdateQueue would create it
        client.update_queue(queue={"name": name})
    with pytest.raises(exceptions.NotFound):
        client.get_queue(name=name)

    async def create_async() -> str:
        created = await manual_emu.async_tasks_client().create_queue(
            parent=parent, queue={"name": name})
        return str(created.name)

    clock.advance(3 * DAY - 1)
    with pytest.raises(exceptions.FailedPrecondition):
        asyncio.run(create_async())
    clock.advance(1)
    assert asyncio.run(create_async()) == name
    assert client.get_queue(name=name).name == name


def test_a_task_is_deleted_31_days_after_its_creation_dispatched_or_not(
        manual_emu: Emulator, make_manual_queue: Make, clock: ManualClock,
        handler: Handler) -> None:
    # "After a task is 31 days old, the task will be deleted regardless of whether it was
    # dispatched or not" (CreateQueue).
    client = manual_emu.tasks_client()
    held = make_manual_queue("held").name
    client.pause_queue(name=held)
    waiting = client.create_task(parent=held, task=task(f"{handler.url}/never")).name
    # Dispatched once on day 30, answered 503, its retry due on day 32: past its retention.
    failing = make_manual_queue("failing", retry_config={
        "min_backoff": {"seconds": int(2 * DAY)}, "max_backoff": {"seconds": int(2 * DAY)}}).name
    handler.default = 503
    retried = client.create_task(parent=failing, task=task(
        f"{handler.url}/late", schedule_time={"seconds": int(clock.now() + 30 * DAY)})).name
    clock.advance(30 * DAY)
    handler.wait_for(1)
    manual_emu.wait_idle()
    assert client.get_task(name=retried).dispatch_count == 1

    clock.advance(DAY - 1)  # a second short of 31 days: both still there
    manual_emu.wait_idle()
    assert client.get_task(name=waiting).name == waiting
    assert [t.name for t in client.list_tasks(parent=failing)] == [retried]

    clock.advance(1)
    manual_emu.wait_idle()

    async def listed(queue: str) -> list[str]:
        pager = await manual_emu.async_tasks_client().list_tasks(parent=queue)
        return [t.name async for t in pager]

    for name, queue in ((waiting, held), (retried, failing)):
        with pytest.raises(exceptions.NotFound):
            client.get_task(name=name)
        assert asyncio.run(listed(queue)) == []
        with pytest.raises(exceptions.AlreadyExists):  # ended like any task: name reserved
            client.create_task(parent=queue, task=task(handler.url, name=name))
    clock.advance(2 * DAY)  # the retry's time passes: it is not dispatched
    manual_emu.wait_idle()
    assert [r.path for r in handler.received] == ["/late"]


def test_list_tasks_full_pages_by_size_so_large_tasks_all_come_back(
        manual_emu: Emulator, make_manual_queue: Make) -> None:
    # "Fewer tasks than requested might be returned, even if more tasks exist" (ListTasks):
    # twelve tasks of ~900 KB are 10.8 MB, past the 4 MiB a client receives by default.
    queue = make_manual_queue("large").name
    client = manual_emu.tasks_client()
    client.pause_queue(name=queue)
    bodies: dict[str, bytes] = {}
    for i in range(12):
        body = bytes([i]) * 900_000
        made = client.create_task(parent=queue, task={
            "http_request": {"url": "http://127.0.0.1:9/big", "body": body}})
        bodies[made.name] = body
    full = tasks_v2.Task.View.FULL
    pages = list(client.list_tasks(request={"parent": queue, "response_view": full}).pages)
    assert len(pages) > 1
    assert all(tasks_v2.ListTasksResponse.pb(p).ByteSize() < 4 * 1024 * 1024 for p in pages)
    assert {t.name: t.http_request.body for p in pages for t in p.tasks} == bodies
    # page_size still bounds a page the size allows.
    two = client.list_tasks(request={"parent": queue, "response_view": full, "page_size": 2})
    assert len(next(iter(two.pages)).tasks) == 2

    async def listed() -> dict[str, bytes]:
        pager = await manual_emu.async_tasks_client().list_tasks(
            request={"parent": queue, "response_view": full})
        return {t.name: t.http_request.body async for t in pager}

    assert asyncio.run(listed()) == bodies
