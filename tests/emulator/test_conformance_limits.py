"""Cloud Tasks' limits in time and size, against the docs of tasks_v2 (DeleteQueue, CreateQueue,
ListTasks), through the official sync and async clients over gRPC, on the manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions

from celery_gcp.emulator import Emulator, ManualClock

Make = Callable[..., Any]

DAY = 86400.0


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
