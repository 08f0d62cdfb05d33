"""Cloud Tasks v2's task calls (create, batch create, get, list, delete, run, batch delete),
with the real service's errors and limits, on the queues of :class:`.TasksService`."""

from __future__ import annotations

import math
import random
from typing import Any

import grpc
from google.cloud import tasks_v2
from google.protobuf import empty_pb2
from google.rpc import status_pb2

from ..platform import MAX_BATCH
from . import names
from .checks import check_task
from .core import Core, from_timestamp, set_timestamp
from .operations import Operations
from .pages import page_of
from .queues import QueueRunner, TaskEntry, find_queue
from .rpc import RpcError

__all__ = ["BATCH_ENTRY", "MAX_BATCH_DELETE", "MAX_LIST_BYTES", "TaskCalls"]

TaskPb: Any = tasks_v2.Task.pb()
# Plain ints, as the raw protobuf fields they are compared with (proto-plus's Enum.__eq__
# is Python code).
_BASIC = int(tasks_v2.Task.View.BASIC)
_FULL = int(tasks_v2.Task.View.FULL)
_POST = int(tasks_v2.HttpMethod.POST)
#: The most bytes of tasks a ListTasks page holds (a page's first task is taken whatever its
#: size, at most 1 MiB). A client on a plain channel (``grpc.insecure_channel``, as emulator
#: clients are made) refuses an answer over gRPC's default 4 MiB, and a page of 1000 FULL
#: tasks could be 1 GB; 3 MiB stays under 4 MiB with room for the token.
MAX_LIST_BYTES = 3 * 1024 * 1024
# A repeated message field's tag and length, at most.
_FIELD_FRAMING = 6
MAX_BATCH_DELETE = 1000
# Fault injection name for single entries of a batch (reported in failed_requests).
BATCH_ENTRY = "BatchCreateTasks:task"
_INVALID = grpc.StatusCode.INVALID_ARGUMENT


class TaskCalls:
    """The task calls of one emulator's CloudTasks service, over its ``queues``."""

    def __init__(self, core: Core, queues: dict[str, QueueRunner],
                 operations: Operations) -> None:
        self.core = core
        self.queues = queues
        self.operations = operations

    async def create_task(self, request: Any) -> Any:
        return self._create(find_queue(self.queues, request.parent), request, self.core.clock.now())

    async def batch_create_tasks(self, request: Any) -> Any:
        """Create up to 100 tasks of one queue; each failure is reported by its index."""
        runner = find_queue(self.queues, request.parent)
        count = len(request.requests)
        if not 0 < count <= MAX_BATCH:
            raise RpcError(_INVALID, f"a batch holds 1..{MAX_BATCH} requests, not {count}")
        if any(r.parent != request.parent for r in request.requests):
            raise RpcError(_INVALID, "every request of a batch must name the batch's parent "
                                     f"{request.parent}")
        done = self.operations.find(request.request_id)
        if done is not None:  # a retried batch: its first answer stands
            return done
        now = self.core.clock.now()
        response = tasks_v2.BatchCreateTasksResponse.pb()()
        metadata = tasks_v2.BatchCreateTasksMetadata.pb()()
        set_timestamp(metadata.start_time, now)
        for index, one in enumerate(request.requests):
            fault = self.core.faults.take_rpc(BATCH_ENTRY)
            try:
                if fault is not None and not fault.after:
                    raise RpcError(fault.code, fault.message)
                task = self._create(runner, one, now)
                if fault is not None:
                    raise RpcError(fault.code, fault.message)
            except RpcError as exc:
                metadata.failed_requests[index].CopyFrom(
                    status_pb2.Status(code=exc.code.value[0], message=exc.message))
                continue
            except names.InvalidName as exc:
                metadata.failed_requests[index].CopyFrom(
                    status_pb2.Status(code=_INVALID.value[0], message=str(exc)))
                continue
            response.tasks.append(task)
        set_timestamp(metadata.end_time, now)
        metadata.state = (tasks_v2.BatchCreateTasksMetadata.State.PARTIALLY_SUCCEEDED
                          if metadata.failed_requests else
                          tasks_v2.BatchCreateTasksMetadata.State.SUCCEEDED)
        return self.operations.finish(names.parent_of(runner.name), request.request_id,
                                      response, metadata)

    def _create(self, runner: QueueRunner, request: Any, now: float) -> Any:
        task = request.task  # the request is ours alone: build the stored task in place
        if task.name:
            names.task_name(task.name, runner.name)
            if task.name in runner.tasks or self.core.tombstoned(task.name):
                raise RpcError(grpc.StatusCode.ALREADY_EXISTS,
                               f"task {task.name} already exists or ended recently")
        else:
            # Unique, not secret: random's generator, without a getrandom call per task.
            task.name = f"{runner.name}/tasks/{random.getrandbits(63)}"
        check_task(task, now)
        if not task.HasField("schedule_time") or from_timestamp(task.schedule_time) < now:
            set_timestamp(task.schedule_time, now)  # a past schedule_time is now
        task.schedule_time.nanos -= task.schedule_time.nanos % 1000  # to the microsecond
        set_timestamp(task.create_time, now)
        task.create_time.nanos = 0  # "truncated to the nearest second"
        if not task.http_request.http_method:
            task.http_request.http_method = _POST
        if not task.HasField("dispatch_deadline"):
            task.dispatch_deadline.FromSeconds(600)
        task.view = _BASIC
        data = task.SerializeToString()
        self.core.store.put_task(task.name, runner.name, data)
        runner.add(TaskEntry(task.name, from_timestamp(task.schedule_time), data,
                             self.expires(task)))
        if request.response_view == _FULL:
            task.view = _FULL
        else:  # the stored bytes are taken: trim the answer in place, no copy
            task.http_request.ClearField("body")
        return task

    def expires(self, task: Any) -> float:
        """When the task retention deletes ``task``: "31 days old", from its creation."""
        if not task.HasField("create_time"):
            return math.inf
        return from_timestamp(task.create_time) + self.core.task_retention_seconds

    async def get_task(self, request: Any) -> Any:
        return _view(self._task(request.name).pb, request.response_view)

    async def list_tasks(self, request: Any) -> Any:
        """A page of tasks by name, of up to ``page_size`` tasks and about
        :data:`MAX_LIST_BYTES` ("Fewer tasks than requested might be returned, even if more
        tasks exist"): at least one task, however large."""
        runner = find_queue(self.queues, request.parent)
        now = self.core.clock.now()
        found = sorted((e for e in list(runner.tasks.values()) if not runner.expired(e, now)),
                       key=lambda e: e.name)
        page, token = page_of(found, request.page_size, request.page_token)
        response = tasks_v2.ListTasksResponse.pb()()
        size = 0
        for index, entry in enumerate(page):  # only the page's tasks are parsed
            task = _view(entry.pb, request.response_view)
            size += task.ByteSize() + _FIELD_FRAMING
            if index and size > MAX_LIST_BYTES:
                token = str(int(request.page_token or 0) + index)
                break
            response.tasks.append(task)
        response.next_page_token = token
        return response

    async def delete_task(self, request: Any) -> Any:
        entry = self._task(request.name)
        self.queues[names.parent_of(entry.name)].end(entry.name)
        return empty_pb2.Empty()

    async def run_task(self, request: Any) -> Any:
        entry = self._task(request.name)
        self.queues[names.parent_of(entry.name)].run_now(entry)
        return _view(entry.pb, request.response_view)

    async def batch_delete_tasks(self, request: Any) -> Any:
        """Delete up to 1000 tasks of one queue; each failure is reported by its index (the
        call is not atomic, as documented)."""
        runner = find_queue(self.queues, request.parent)
        count = len(request.names)
        if not 0 < count <= MAX_BATCH_DELETE:
            raise RpcError(_INVALID, f"a batch deletes 1..{MAX_BATCH_DELETE} tasks, not {count}")
        done = self.operations.find(request.request_id)
        if done is not None:
            return done
        now = self.core.clock.now()
        metadata = tasks_v2.BatchDeleteTasksMetadata.pb()()
        set_timestamp(metadata.start_time, now)
        for index, name in enumerate(request.names):
            try:
                entry = self._task(name)
                if names.parent_of(entry.name) != runner.name:
                    raise RpcError(_INVALID, f"task {name} is not in {runner.name}")
                runner.end(entry.name)
            except RpcError as exc:
                metadata.failed_requests[index].CopyFrom(
                    status_pb2.Status(code=exc.code.value[0], message=exc.message))
            except names.InvalidName as exc:
                metadata.failed_requests[index].CopyFrom(
                    status_pb2.Status(code=_INVALID.value[0], message=str(exc)))
        set_timestamp(metadata.end_time, now)
        metadata.state = (tasks_v2.BatchDeleteTasksMetadata.State.PARTIALLY_SUCCEEDED
                          if metadata.failed_requests else
                          tasks_v2.BatchDeleteTasksMetadata.State.SUCCEEDED)
        return self.operations.finish(names.parent_of(runner.name), request.request_id,
                                      empty_pb2.Empty(), metadata)

    def _task(self, name: str) -> TaskEntry:
        queue = names.parent_of(name)
        names.task_name(name, names.queue_name(queue))
        runner = self.queues.get(queue)
        entry = runner.tasks.get(name) if runner is not None else None
        if entry is None or runner is None or runner.expired(entry, self.core.clock.now()):
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"task {name} does not exist")
        return entry


def _view(task: Any, view: int) -> Any:
    if view == _FULL:
        full = TaskPb()
        full.CopyFrom(task)
        full.view = _FULL
        return full
    basic = TaskPb()
    basic.CopyFrom(task)
    basic.http_request.ClearField("body")
    basic.view = _BASIC
    return basic
