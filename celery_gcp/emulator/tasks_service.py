"""Cloud Tasks v2 over gRPC: queues (create, get, list, update, delete, purge, pause, resume),
their IAM policies, and the task calls of :mod:`.task_calls`, with the real service's errors
and limits. Batch creates answer a long-running operation, already done, which the
``google.longrunning.Operations`` service of :mod:`.operations` serves afterwards."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import grpc
from google.cloud import tasks_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2, field_mask_pb2

from . import names
from .checks import check_limits
from .core import Core, from_timestamp, set_timestamp
from .operations import Operations
from .pages import page_of
from .queue_config import apply_queue_defaults
from .queues import QueueRunner, TaskEntry, find_queue
from .rpc import Handler, RpcError, service_handler
from .task_calls import TaskCalls

__all__ = ["TasksService"]

QueuePb: Any = tasks_v2.Queue.pb()
TaskPb: Any = tasks_v2.Task.pb()
# Plain ints, as the raw protobuf fields they are compared with (proto-plus's Enum.__eq__
# is Python code).
_PAUSED = int(tasks_v2.Queue.State.PAUSED)
_RUNNING = int(tasks_v2.Queue.State.RUNNING)
_INVALID = grpc.StatusCode.INVALID_ARGUMENT


class TasksService:
    """The CloudTasks service of one emulator."""

    name = "google.cloud.tasks.v2.CloudTasks"

    def __init__(self, core: Core, operations: Operations | None = None) -> None:
        self.core = core
        self.queues: dict[str, QueueRunner] = {}
        self.operations = operations or Operations()
        self.calls = TaskCalls(core, self.queues, self.operations)
        #: The IAM policy set on each queue (SetIamPolicy), kept as given.
        self.policies: dict[str, Any] = {}

    def handler(self) -> grpc.GenericRpcHandler:
        """The gRPC handler serving every method."""
        calls = self.calls
        methods: dict[str, tuple[Any, Handler]] = {
            "CreateQueue": (tasks_v2.CreateQueueRequest.pb(), self.create_queue),
            "GetQueue": (tasks_v2.GetQueueRequest.pb(), self.get_queue),
            "ListQueues": (tasks_v2.ListQueuesRequest.pb(), self.list_queues),
            "UpdateQueue": (tasks_v2.UpdateQueueRequest.pb(), self.update_queue),
            "DeleteQueue": (tasks_v2.DeleteQueueRequest.pb(), self.delete_queue),
            "PurgeQueue": (tasks_v2.PurgeQueueRequest.pb(), self.purge_queue),
            "PauseQueue": (tasks_v2.PauseQueueRequest.pb(), self.pause_queue),
            "ResumeQueue": (tasks_v2.ResumeQueueRequest.pb(), self.resume_queue),
            "CreateTask": (tasks_v2.CreateTaskRequest.pb(), calls.create_task),
            "BatchCreateTasks": (tasks_v2.BatchCreateTasksRequest.pb(), calls.batch_create_tasks),
            "GetTask": (tasks_v2.GetTaskRequest.pb(), calls.get_task),
            "ListTasks": (tasks_v2.ListTasksRequest.pb(), calls.list_tasks),
            "DeleteTask": (tasks_v2.DeleteTaskRequest.pb(), calls.delete_task),
            "RunTask": (tasks_v2.RunTaskRequest.pb(), calls.run_task),
            "BatchDeleteTasks": (tasks_v2.BatchDeleteTasksRequest.pb(), calls.batch_delete_tasks),
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
                                     self.calls.expires(pb)))

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
        page, token = page_of(found, request.page_size, request.page_token)
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
        return find_queue(self.queues, name)

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
