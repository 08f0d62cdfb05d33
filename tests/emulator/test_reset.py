"""Emulator.reset(): a running emulator made as new, for tests that share one."""

from __future__ import annotations

import grpc
import pytest
from google.api_core import exceptions

from celery_gcp.emulator import Emulator

PARENT = "projects/p/locations/l"
QUEUE = f"{PARENT}/queues/reset"


def test_reset_deletes_queues_jobs_tasks_and_forgets_task_names() -> None:
    with Emulator() as emu:
        tasks, scheduler = emu.tasks_client(), emu.scheduler_client()
        tasks.create_queue(parent=PARENT, queue={"name": QUEUE})
        tasks.pause_queue(name=QUEUE)
        tasks.create_task(parent=QUEUE, task={
            "name": f"{QUEUE}/tasks/once", "http_request": {"url": "http://127.0.0.1:9/"}})
        tasks.delete_task(name=f"{QUEUE}/tasks/once")  # leaves a tombstone
        scheduler.create_job(parent=PARENT, job={
            "name": f"{PARENT}/jobs/j", "schedule": "0 0 1 1 *",
            "http_target": {"uri": "http://127.0.0.1:9/"}})
        emu.faults.fail_rpc("GetQueue", grpc.StatusCode.UNAVAILABLE)

        emu.reset()

        assert list(tasks.list_queues(parent=PARENT)) == []
        assert list(scheduler.list_jobs(parent=PARENT)) == []
        assert emu.pending() == 0
        with pytest.raises(exceptions.NotFound):  # the fault is gone: the real answer
            tasks.get_queue(name=QUEUE)
        tasks.create_queue(parent=PARENT, queue={"name": QUEUE})
        tasks.pause_queue(name=QUEUE)
        # The tombstone is forgotten: the name can be used again at once.
        tasks.create_task(parent=QUEUE, task={
            "name": f"{QUEUE}/tasks/once", "http_request": {"url": "http://127.0.0.1:9/"}})
        assert [t.name for t in tasks.list_tasks(parent=QUEUE)] == [f"{QUEUE}/tasks/once"]
