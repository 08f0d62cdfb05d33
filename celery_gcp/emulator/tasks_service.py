"""Cloud Tasks v2 over gRPC: queues (create, get, list, update, delete, purge, pause, resume)
and tasks (create, batch create, get, list, delete, run), with the real service's errors and
limits. Batch creates answer a long-running operation, already done, which the
``google.longrunning.Operations`` service of :mod:`.operations` serves afterwards."""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime
from typing import Any

import grpc
from google.cloud import tasks_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2, field_mask_pb2
from google.rpc import status_pb2

from ..platform import (
    MAX_BATCH,
    MAX_PAGE_SIZE,
)
from . import names
from .checks import check_limits, check_task
from .core import Core, from_timestamp, set_timestamp
from .operations import Operations
from .queue_config import apply_queue_defaults
from .queues import QueueRunner, TaskEntry
from .rpc import Handler, RpcError, service_handler

__all__ = ["MAX_LIST_BYTES", "TasksService"]

QueuePb: Any = tasks_v2.Queue.pb()
TaskPb: Any = tasks_v2.Task.pb()
# Plain ints, as the raw protobuf fields they are compared with (proto-plus's Enum.__eq__
# is Python code).
_BASIC = int(tasks_v2.Task.View.BASIC)
_FULL = int(tasks_v2.Task.View.FULL)
_PAUSED = int(tasks_v2.Queue.State.PAUSED)
_RUNNING = int(tasks_v2.Queue.State.RUNNING)
_PAGE = 1000
#: The most bytes of tasks a ListTasks page holds (a page's first task is taken whatever its
#: size, at most 1 MiB). A client on a plain channel (``grpc.insecure_channel``, as emulator
#: clients are made) refuses an answer over gRPC's default 4 MiB, and a page of 1000 FULL
#: tasks could be 1 GB; 3 MiB stays under 4 MiB with room for the token.
MAX_LIST_BYTES = 3 * 1024 * 1024
# A repeated message field's tag and length, at most.
_FIELD_FRAMING = 6
MAX_BATCH_DELETE = 1000
_POST = int(tasks_v2.HttpMethod.POST)
# Fault injection name for single entries of a batch (reported in failed_requests).
BATCH_ENTRY = "BatchCreateTasks:task"
_INVALID = grpc.StatusCode.INVALID_ARGUMENT


class TasksService:
    """The CloudTasks service of one emulator."""

    name = "google.cloud.tasks.v2.CloudTasks"

    def __init__(self, core: Core, operations: Operations | None = None) -> None:
        self.core = core
        self.queues: dict[str, QueueRunner] = {}
        self.operations = operations or Operations()
        #: The IAM policy set on each queue (SetIamPolicy), kept as given.
        self.policies: dict[str, Any] = {}

    def handler(self) -> grpc.GenericRpcHandler:
        """The gRPC handler serving every method."""
        methods: dict[str, tuple[Any, Handler]] = {
            "CreateQueue": (tasks_v2.CreateQueueRequest.pb(), self.create_queue),
            "GetQueue": (tasks_v2.GetQueueRequest.pb(), self.get_queue),
            "ListQueues": (tasks_v2.ListQueuesRequest.pb(), self.list_queues),
            "UpdateQueue": (tasks_v2.UpdateQueueRequest.pb(), self.update_queue),
            "DeleteQueue": (tasks_v2.DeleteQueueRequest.pb(), self.delete_queue),
            "PurgeQueue": (tasks_v2.PurgeQueueRequest.pb(), self.purge_queue),
            "PauseQueue": (tasks_v2.PauseQueueRequest.pb(), self.pause_queue),
            "ResumeQueue": (tasks_v2.ResumeQueueRequest.pb(), self.resume_queue),
            "CreateTask": (tasks_v2.CreateTaskRequest.pb(), self.create_task),
            "BatchCreateTasks": (tasks_v2.BatchCreateTasksRequest.pb(), self.batch_create_tasks),
            "GetTask": (tasks_v2.GetTaskRequest.pb(), self.get_task),
            "ListTasks": (tasks_v2.ListTasksRequest.pb(), self.list_tasks),
            "DeleteTask": (tasks_v2.DeleteTaskRequest.pb(), self.delete_task),
            "RunTask": (tasks_v2.RunTaskRequest.pb(), self.run_task),
            "BatchDeleteTasks": (tasks_v2.BatchDeleteTasksRequest.pb(), self.batch_delete_tasks),
            "GetIamPolicy": (iam_policy_pb2.GetIamPolicyRequest, self.get_iam_policy),
            "SetIamPolicy": (iam_policy_pb2.SetIamPolicyRequest, self.set_iam_policy),
            "TestIamPermissions": (iam_policy_pb2.TestIamPermissionsRequest,
                                   self.test_iam_permissions),
        }
        return service_handler(self.name, methods, self.core.faults)

    # -- restoring -------------------------------------------------------------------------

    def restore(self, queues: list[bytes], tasks: list[bytes]) -> None:
        """Rebuild queues and tasks saved by an earlier run (before :meth:`start`)."""
        for data in queues:
            pb = QueuePb.FromString(data)
            self.queues[pb.name] = QueueRunner(pb, self.core)
        for data in tasks:
            pb = TaskPb.FromString(data)
            runner = self.queues.get(names.parent_of(pb.name))
            if runner is not None:  # one past its retention is ended by the dispatch loop
                runner.add(TaskEntry(pb.name, from_timestamp(pb.schedule_time), data,
                                     self._expires(pb)))

    def start(self) -> None:
        """Start every queue's dispatch loop."""
        for runner in self.queues.values():
            runner.start()

    async def stop(self) -> None:
        """Stop every queue's dispatch loop."""
        for runner in self.queues.values():
            await runner.stop()

    # -- queues ----------------------------------------------------------------------------

    async def create_queue(self, request: Any) -> Any:
        names.location(request.parent)
        queue = QueuePb()
        queue.CopyFrom(request.queue)
        names.queue_name(queue.name)
        if names.parent_of(queue.name) != request.parent:
            raise RpcError(_INVALID, f"queue {queue.name!r} is not under {request.parent!r}")
        if queue.name in self.queues:
            raise RpcError(grpc.StatusCode.ALREADY_EXISTS, f"queue {queue.name} already exists")
        self._check_reusable(queue.name)
        return self._put_queue(queue)

    async def get_queue(self, request: Any) -> Any:
        return self._queue(request.name).pb

    async def list_queues(self, request: Any) -> Any:
        names.location(request.parent)
        state = _state_filter(request.filter)
        found = sorted((r.pb for r in self.queues.values()
                        if names.parent_of(r.name) == request.parent
                        and (state is None or r.pb.state == state)), key=lambda q: q.name)
        page, token = _page(found, request.page_size, request.page_token)
        return tasks_v2.ListQueuesResponse.pb()(queues=page, next_page_token=token)

    async def update_queue(self, request: Any) -> Any:
        update = request.queue
        names.queue_name(update.name)
        runner = self.queues.get(update.name)
        if runner is None:  # the service creates a queue that UpdateQueue names
            self._check_reusable(update.name)
            queue = QueuePb()
            queue.CopyFrom(update)
            return self._put_queue(queue)
        queue = QueuePb()
        queue.CopyFrom(runner.pb)
        paths = list(request.update_mask.paths)
        if not paths:  # "If empty, then all fields will be updated": the settable ones
            for field in _SETTABLE:
                queue.ClearField(field)
                if update.HasField(field):
                    getattr(queue, field).CopyFrom(getattr(update, field))
        else:
            mask = field_mask_pb2.FieldMask(paths=paths)
            if not mask.IsValidForDescriptor(QueuePb.DESCRIPTOR):
                raise RpcError(_INVALID, f"invalid update_mask paths {paths}")
            # Output-only fields named in the mask are ignored, as the fields say.
            kept = [p for p in paths if p.split(".")[0] not in _OUTPUT_ONLY]
            field_mask_pb2.FieldMask(paths=kept).MergeMessage(
                update, queue, replace_message_field=True)
        return self._put_queue(queue, runner)

    async def delete_queue(self, request: Any) -> Any:
        runner = self._queue(request.name)
        del self.queues[runner.name]
        for entry in runner.tasks.values():
            entry.ended = True
        # Reserved before the await, so a CreateQueue that lands meanwhile is refused too.
        self.core.delete_queue(runner.name)
        await runner.stop()
        return empty_pb2.Empty()

    async def purge_queue(self, request: Any) -> Any:
        runner = self._queue(request.name)
        for name in list(runner.tasks):
            runner.end(name)
        set_timestamp(runner.pb.purge_time, self.core.clock.now())
        self.core.store.put_queue(runner.name, runner.pb.SerializeToString())
        return runner.pb

    async def pause_queue(self, request: Any) -> Any:
        return self._set_state(request.name, _PAUSED)

    async def resume_queue(self, request: Any) -> Any:
        return self._set_state(request.name, _RUNNING)

    def _set_state(self, name: str, state: int) -> Any:
        runner = self._queue(name)
        if state == _RUNNING and runner.pb.state != _RUNNING:
            runner.ramp_up()
        runner.pb.state = state
        self.core.store.put_queue(runner.name, runner.pb.SerializeToString())
        runner.changed()
        return runner.pb

    def _put_queue(self, queue: Any, runner: QueueRunner | None = None) -> Any:
        check_limits(queue)
        apply_queue_defaults(queue)
        if runner is None:
            runner = QueueRunner(queue, self.core)
            self.queues[queue.name] = runner
            runner.start()
        else:
            runner.pb = queue
            runner.changed()
        self.core.store.put_queue(queue.name, queue.SerializeToString())
        return queue

    def _check_reusable(self, name: str) -> None:
        """Refuse to create a queue under the name of one deleted within the reuse window.

        DeleteQueue's docs warn of the window but name no error (a create in it "may appear
        to recreate the queue"); the emulator answers FAILED_PRECONDITION, so the caller
        learns it at once rather than from a later NOT_FOUND.
        """
        free = self.core.queue_free_at(name)
        if free is not None:
            when = datetime.fromtimestamp(free, UTC).isoformat(timespec="seconds")
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"queue {name} was deleted recently: a queue of that name can be "
                           f"created again from {when} (the emulator's clock)")

    def _queue(self, name: str) -> QueueRunner:
        names.queue_name(name)
        runner = self.queues.get(name)
        if runner is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"queue {name} does not exist")
        return runner

    # -- tasks -----------------------------------------------------------------------------

    async def create_task(self, request: Any) -> Any:
        return self._create(self._queue(request.parent), request, self.core.clock.now())

    async def batch_create_tasks(self, request: Any) -> Any:
        """Create up to 100 tasks of one queue; each failure is reported by its index."""
        runner = self._queue(request.parent)
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
                             self._expires(task)))
        if request.response_view == _FULL:
            task.view = _FULL
        else:  # the stored bytes are taken: trim the answer in place, no copy
            task.http_request.ClearField("body")
        return task

    def _expires(self, task: Any) -> float:
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
        runner = self._queue(request.parent)
        now = self.core.clock.now()
        found = sorted((e for e in list(runner.tasks.values()) if not runner.expired(e, now)),
                       key=lambda e: e.name)
        page, token = _page(found, request.page_size, request.page_token)
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
        runner = self._queue(request.parent)
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

    # -- IAM: a stored policy per queue ----------------------------------------------------

    async def get_iam_policy(self, request: Any) -> Any:
        self._queue(request.resource)
        return self.policies.get(request.resource) or policy_pb2.Policy(version=1)

    async def set_iam_policy(self, request: Any) -> Any:
        self._queue(request.resource)
        policy = policy_pb2.Policy()
        policy.CopyFrom(request.policy)
        previous = self.policies.get(request.resource)
        policy.etag = str(int(previous.etag or b"0") + 1).encode() if previous else b"1"
        self.policies[request.resource] = policy
        return policy

    async def test_iam_permissions(self, request: Any) -> Any:
        # The emulator knows no callers: every permission asked for is held.
        self._queue(request.resource)
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=list(request.permissions))

    def _task(self, name: str) -> TaskEntry:
        queue = names.parent_of(name)
        names.task_name(name, names.queue_name(queue))
        runner = self.queues.get(queue)
        entry = runner.tasks.get(name) if runner is not None else None
        if entry is None or runner is None or runner.expired(entry, self.core.clock.now()):
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"task {name} does not exist")
        return entry


# The fields UpdateQueue sets; the others are the queue's name or output only.
_SETTABLE = ("app_engine_routing_override", "rate_limits", "retry_config",
             "stackdriver_logging_config", "http_target")
_OUTPUT_ONLY = frozenset({"name", "state", "purge_time"})
_FILTER = re.compile(r"\s*state\s*[:=]\s*([A-Z_]+)\s*")


def _state_filter(text: str) -> int | None:
    """The queue state a ListQueues ``filter`` asks for (``state: PAUSED``), or ``None``."""
    if not text.strip():
        return None
    found = _FILTER.fullmatch(text)
    states = tasks_v2.Queue.State.__members__
    if found is None or found[1] not in states:
        raise RpcError(_INVALID, f"filter {text!r}: the emulator filters queues by state "
                                 f"only, as in 'state: PAUSED' ({', '.join(states)})")
    return int(states[found[1]])


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


def _page(items: list[Any], size: int, token: str) -> tuple[list[Any], str]:
    if size < 0 or size > MAX_PAGE_SIZE:
        raise RpcError(_INVALID, f"page_size {size} is outside 0..{MAX_PAGE_SIZE}")
    if token and not (token.isascii() and token.isdigit()):
        raise RpcError(_INVALID, f"page_token {token!r} was not given by a previous page")
    start = int(token) if token else 0
    end = start + (size if size > 0 else _PAGE)
    return items[start:end], (str(end) if end < len(items) else "")
