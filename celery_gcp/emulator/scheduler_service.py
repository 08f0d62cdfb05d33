"""Cloud Scheduler v1 over gRPC: jobs (create, get, list, update, delete, pause, resume, run).

As documented: a job created without a name gets a random unique one; a description is at most
500 characters and a job at most 1 MB; only an ENABLED job can be paused and only a PAUSED one
resumed (FAILED_PRECONDITION otherwise). Pub/Sub and App Engine targets are refused with
INVALID_ARGUMENT: the emulator has no Pub/Sub and no App Engine app to deliver to.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from google.cloud import scheduler_v1
from google.protobuf import empty_pb2, field_mask_pb2

from .. import cron
from . import appengine_cron, names
from .core import Core, from_duration, set_timestamp
from .jobs import JobRunner, apply_job_defaults
from .outgoing import BODY_METHODS
from .rpc import Handler, RpcError, service_handler

__all__ = ["SchedulerService"]

JobPb: Any = scheduler_v1.Job.pb()
_ENABLED = scheduler_v1.Job.State.ENABLED
_PAUSED = scheduler_v1.Job.State.PAUSED
_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_OUTPUT_ONLY = {"name", "state", "status", "schedule_time", "last_attempt_time",
                "user_update_time"}
_PAGE = 500
_MAX_DESCRIPTION = 500
_MAX_JOB_BYTES = 1024 * 1024
_FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


class SchedulerService:
    """The CloudScheduler service of one emulator."""

    name = "google.cloud.scheduler.v1.CloudScheduler"

    def __init__(self, core: Core) -> None:
        self.core = core
        self.jobs: dict[str, JobRunner] = {}

    def handler(self) -> grpc.GenericRpcHandler:
        """The gRPC handler serving every method."""
        methods: dict[str, tuple[Any, Handler]] = {
            "CreateJob": (scheduler_v1.CreateJobRequest.pb(), self.create_job),
            "GetJob": (scheduler_v1.GetJobRequest.pb(), self.get_job),
            "ListJobs": (scheduler_v1.ListJobsRequest.pb(), self.list_jobs),
            "UpdateJob": (scheduler_v1.UpdateJobRequest.pb(), self.update_job),
            "DeleteJob": (scheduler_v1.DeleteJobRequest.pb(), self.delete_job),
            "PauseJob": (scheduler_v1.PauseJobRequest.pb(), self.pause_job),
            "ResumeJob": (scheduler_v1.ResumeJobRequest.pb(), self.resume_job),
            "RunJob": (scheduler_v1.RunJobRequest.pb(), self.run_job),
        }
        return service_handler(self.name, methods, self.core.faults)

    def executions(self) -> int:
        """Job executions in flight, over every job (see :meth:`JobRunner.executions`)."""
        return sum(runner.executions() for runner in self.jobs.values())

    def restore(self, jobs: list[bytes]) -> None:
        """Rebuild jobs saved by an earlier run (before :meth:`start`)."""
        for data in jobs:
            pb = JobPb.FromString(data)
            self.jobs[pb.name] = JobRunner(pb, self.core)

    def start(self) -> None:
        """Start every job's schedule loop."""
        for runner in self.jobs.values():
            runner.start()

    async def stop(self) -> None:
        """Stop every job's schedule loop."""
        for runner in self.jobs.values():
            await runner.stop()

    async def create_job(self, request: Any) -> Any:
        names.location(request.parent)
        job = JobPb()
        job.CopyFrom(request.job)
        if not job.name:  # the service names it
            job.name = f"{request.parent}/jobs/{uuid.uuid4().hex}"
        names.job_name(job.name)
        if names.parent_of(job.name) != request.parent:
            raise RpcError(_INVALID, f"job {job.name!r} is not under {request.parent!r}")
        if job.name in self.jobs:
            raise RpcError(grpc.StatusCode.ALREADY_EXISTS, f"job {job.name} already exists")
        return self._put(job)

    async def get_job(self, request: Any) -> Any:
        return self._job(request.name).pb

    async def list_jobs(self, request: Any) -> Any:
        names.location(request.parent)
        found = sorted((r.pb for r in self.jobs.values()
                        if names.parent_of(r.name) == request.parent), key=lambda j: j.name)
        start = int(request.page_token) if request.page_token.isdigit() else 0
        end = start + (request.page_size if request.page_size > 0 else _PAGE)
        return scheduler_v1.ListJobsResponse.pb()(
            jobs=found[start:end], next_page_token=str(end) if end < len(found) else "")

    async def update_job(self, request: Any) -> Any:
        runner = self._job(request.job.name)
        job = JobPb()
        job.CopyFrom(runner.pb)
        paths = list(request.update_mask.paths)
        if not paths:
            raise RpcError(_INVALID, "update_mask is required: name the fields to update")
        mask = field_mask_pb2.FieldMask(paths=paths)
        if not mask.IsValidForDescriptor(JobPb.DESCRIPTOR):
            raise RpcError(_INVALID, f"invalid update_mask paths {paths}")
        if any(p.split(".")[0] in _OUTPUT_ONLY for p in paths):
            raise RpcError(_INVALID, f"update_mask {paths} names output-only fields")
        mask.MergeMessage(request.job, job, replace_message_field=True)
        return self._put(job, runner)

    async def delete_job(self, request: Any) -> Any:
        runner = self._job(request.name)
        del self.jobs[runner.name]
        await runner.stop()
        self.core.store.delete_job(runner.name)
        return empty_pb2.Empty()

    async def pause_job(self, request: Any) -> Any:
        return self._set_state(request.name, _PAUSED, _ENABLED)

    async def resume_job(self, request: Any) -> Any:
        return self._set_state(request.name, _ENABLED, _PAUSED)

    async def run_job(self, request: Any) -> Any:
        runner = self._job(request.name)
        runner.revive()
        runner.run_now()
        return runner.pb

    def _set_state(self, name: str, state: int, required: int) -> Any:
        runner = self._job(name)
        if runner.pb.state != required:
            have, want = JobPb.State.Name(runner.pb.state), JobPb.State.Name(required)
            verb = "paused" if state == _PAUSED else "resumed"
            raise RpcError(_FAILED_PRECONDITION,
                           f"job {name} is {have}: only {want} jobs can be {verb}")
        runner.revive()
        runner.pb.state = state
        set_timestamp(runner.pb.user_update_time, self.core.clock.now())
        runner.rescheduled()
        self.core.store.put_job(runner.name, runner.pb.SerializeToString())
        return runner.pb

    def _put(self, job: Any, runner: JobRunner | None = None) -> Any:
        _check_job(job)
        apply_job_defaults(job)
        set_timestamp(job.user_update_time, self.core.clock.now())
        if runner is None:
            runner = JobRunner(job, self.core)
            self.jobs[job.name] = runner
            runner.start()
        else:
            runner.pb = job
            runner.revive()
            runner.rescheduled()
        self.core.store.put_job(job.name, job.SerializeToString())
        return job

    def _job(self, name: str) -> JobRunner:
        names.job_name(name)
        runner = self.jobs.get(name)
        if runner is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"job {name} does not exist")
        return runner


def _check_job(job: Any) -> None:
    if len(job.description) > _MAX_DESCRIPTION:
        raise RpcError(_INVALID, f"description has {len(job.description)} characters: at most "
                       f"{_MAX_DESCRIPTION} are allowed")
    size = job.ByteSize()
    if size > _MAX_JOB_BYTES:
        raise RpcError(_INVALID, f"the job is {size} bytes: at most 1 MB ({_MAX_JOB_BYTES} "
                       "bytes) is allowed; make the body or headers smaller")
    target = job.WhichOneof("target")
    if target == "app_engine_http_target":
        raise RpcError(_INVALID, "app_engine_http_target is not emulated (there is no App "
                       "Engine app to deliver to): use http_target with your service's URL")
    if target == "pubsub_target":
        raise RpcError(_INVALID, "pubsub_target is not emulated (the emulator has no Pub/Sub): "
                       "use http_target")
    if target != "http_target":
        raise RpcError(_INVALID, "the job has no target: set http_target")
    uri = job.http_target.uri
    if not uri.startswith(("http://", "https://")):
        raise RpcError(_INVALID, f"http_target.uri {uri!r} must be an http(s) URL")
    if job.http_target.body and job.http_target.http_method not in BODY_METHODS:
        raise RpcError(_INVALID, "http_target.body is allowed only with POST, PUT or PATCH")
    try:
        appengine_cron.validate(job.schedule, job.time_zone or "Etc/UTC")
    except cron.InvalidSchedule as exc:
        raise RpcError(_INVALID, str(exc)) from None
    retry = job.retry_config
    if not 0 <= retry.retry_count <= 5:
        raise RpcError(_INVALID, f"retry_count {retry.retry_count} is outside 0..5")
    if job.HasField("attempt_deadline"):
        deadline = from_duration(job.attempt_deadline)
        if not 15 <= deadline <= 1800:
            raise RpcError(_INVALID, f"attempt_deadline {deadline:g}s is outside 15s..30min")
