"""The FastAPI side: one POST endpoint per task at ``{task_endpoint_prefix}/{task name}``.

Each endpoint declares the task's argument schema as its JSON body (so it shows in OpenAPI and
FastAPI validates it: a body that does not validate gets 422) and the task's own FastAPI
dependencies, which FastAPI resolves per request. The endpoint decodes the ``X-Celery-*``
metadata, runs the task through :mod:`celery_gcp.worker.execute`, and answers with the status
of the outcome table in :mod:`celery_gcp.worker.outcomes`.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import typing
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from .. import signals
from ..exceptions import (
    ImproperlyConfigured,
    MessageDecodeError,
    TaskArgumentError,
    TransportError,
)
from ..message import HttpTarget, Message
from ..request import CloudTasksDelivery, Context
from ..transport import SendOptions
from .execute import RunResult, TaskRun, run_async, run_sync
from .guard import guarded_route_class
from .outcomes import STATE, STATUS, Outcome

if TYPE_CHECKING:
    from ..app import Celery
    from ..task import Task

__all__ = ["add_task_route", "admit", "answer", "build_router", "expired", "metadata",
           "received", "relay", "result_response"]

logger = logging.getLogger("celery_gcp.worker")
_REQUEST = "celery_gcp_request"
_BODY = "celery_gcp_arguments"
_P = inspect.Parameter
_METADATA_PREFIXES = (b"x-celery-", b"x-cloudtasks-")
_RELAY = "x-celery-relay"  # set by the Cloud Tasks transport on a relay hop
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")


def build_router(app: Celery) -> APIRouter:
    """A router with an endpoint for every task of ``app``, the beat endpoint, and a 404 for
    unknown names."""
    verifier = app.verifier
    if not verifier.enabled:
        logger.warning("task_auth='none': the task endpoints run tasks for ANY caller; keep "
                       "the service private (Cloud Run IAM: roles/run.invoker)")
    for problem in verifier.problems():
        logger.error("task_auth='oidc': %s; until then every task request is refused",
                     problem)
    router = APIRouter(route_class=guarded_route_class(app, verifier))
    for task in app.tasks.values():
        if not getattr(task, "served_by_route", False):  # app.TaskRoute routes serve these
            add_task_route(router, app, task)
    prefix = app.conf.task_endpoint_prefix.rstrip("/")

    async def beat_fire(entry: str, request: Request) -> Response:
        return await _beat(app, entry, request)

    router.add_api_route(prefix + "/beat/{entry}", beat_fire, methods=["POST"],
                         include_in_schema=False)

    async def unknown_task(name: str) -> Response:
        signals.task_unknown.send(sender=None, name=name, id=None, message=None, exc=None)
        logger.warning("request for unknown task %r: is its module imported by the worker?",
                       name)
        return answer(Outcome.UNKNOWN_TASK, {"detail": f"unknown task {name!r}"})

    router.add_api_route(prefix + "/{name:path}", unknown_task, methods=["POST"],
                         include_in_schema=False)
    return router


def add_task_route(router: APIRouter, app: Celery, task: Task[..., Any]) -> None:
    """Add the endpoint of ``task`` to ``router`` (before its unknown-task catch-all)."""
    spec = task.arguments
    has_body = bool(spec.signature.parameters)
    dependency_names = [p.name for p in spec.dependencies]
    run_in_loop = task.is_async
    request_name = next((p.name for p in spec.dependencies if _is_request(p.annotation)),
                        _REQUEST)
    shared_request = request_name != _REQUEST

    async def endpoint(**params: Any) -> Response:
        request: Request = params[request_name] if shared_request else params.pop(_REQUEST)
        values: dict[str, Any] = params.pop(_BODY) if has_body else {}
        headers = metadata(request)
        message = await admit(app, task, headers, await request.body())
        if isinstance(message, Response):
            return message
        run = received(app, task, message, values, {n: params[n] for n in dependency_names},
                       CloudTasksDelivery.from_headers(headers))
        if run_in_loop:
            result = await run_async(run)
        else:
            result = await run_in_threadpool(run_sync, run)
        return result_response(task, message, result)

    # FastAPI fills one Request parameter per endpoint: share the task's own, if it has one.
    parameters = [] if shared_request else [_P(_REQUEST, _P.KEYWORD_ONLY, annotation=Request)]
    if has_body:
        parameters.append(_P(_BODY, _P.KEYWORD_ONLY, annotation=spec.schema, default=Body()))
    parameters += [p.replace(kind=_P.KEYWORD_ONLY) for p in spec.dependencies]
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = task.name.replace(".", "_")
    route_count = len(router.routes)
    prefix = app.conf.task_endpoint_prefix.rstrip("/")
    router.add_api_route(
        f"{prefix}/{task.name}", endpoint, methods=["POST"], name=task.name,
        summary=task.name, description=inspect.getdoc(task.run) or "",
        tags=["tasks"], operation_id=f"task_{task.name}",
    )
    if route_count and getattr(router.routes[route_count - 1], "path", "").endswith(
        "/{name:path}"
    ):
        # Keep the unknown-task catch-all last so it never shadows a task added later.
        router.routes.insert(route_count - 1, router.routes.pop())


async def admit(app: Celery, task: Task[..., Any], headers: Mapping[str, str], body: bytes,
                target: HttpTarget | None = None) -> Message | Response:
    """The message of a task request (``target``: where it was delivered, for a route), or
    the answer that ends the request before a run: bad metadata (400), past its ``expires``
    (200), or a relay hop, sent on towards its ETA."""
    try:
        message = Message.from_http(task.name, headers, body)
    except MessageDecodeError as exc:
        return answer(Outcome.MALFORMED, {"detail": str(exc)})
    if target is not None:
        message = replace(message, target=target)
    if message.expires is not None and message.expires <= app.now():
        return expired(task, message)
    if _RELAY in headers and message.eta is not None and message.eta > app.now():
        return await relay(app, task, message)
    return message


def received(app: Celery, task: Task[..., Any], message: Message, values: dict[str, Any],
             dependencies: dict[str, Any], cloudtasks: CloudTasksDelivery | None) -> TaskRun:
    """The run of an admitted message, announced by ``task_received``."""
    run = TaskRun(task, message, values, dependencies, cloudtasks=cloudtasks)
    if signals.task_received.receivers:
        signals.task_received.send(sender=app, request=run.request)
    return run


def metadata(request: Request) -> dict[str, str]:
    """The request's ``X-Celery-*`` and ``X-CloudTasks-*`` headers, by lower-case name."""
    # One pass over the raw headers (names are lower case in ASGI) instead of a scan per
    # lookup: only the X-Celery-* and X-CloudTasks-* ones are read.
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in request.scope["headers"]
        if name.startswith(_METADATA_PREFIXES)
    }


def _is_request(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return isinstance(annotation, type) and issubclass(annotation, Request)


def answer(outcome: Outcome, content: dict[str, Any]) -> Response:
    """The JSON answer of ``outcome``, with its status from the outcome table."""
    try:
        body = to_json(content, fallback=repr)
    except ValueError:  # e.g. a result holding a lone surrogate: escape what cannot be encoded
        body = json.dumps(content, default=repr, ensure_ascii=True).encode()
    return Response(body, status_code=STATUS[outcome], media_type="application/json")


def result_response(task: Task[..., Any], message: Message, result: RunResult) -> Response:
    """The answer of a finished run (the return value, unless results are ignored)."""
    content: dict[str, Any] = {"id": message.id, "task": task.name, "state": result.state}
    if result.outcome is Outcome.SUCCESS:
        ignore = task.ignore_result
        if not (task.app.conf.task_ignore_result if ignore is None else ignore):
            content["result"] = result.retval
    else:
        content["error"] = repr(result.retval)[:1000]
    return answer(result.outcome, content)


async def relay(app: Celery, task: Task[..., Any], message: Message) -> Response:
    """Send the next hop of a task due beyond Cloud Tasks' horizon (503 if that fails)."""
    # A hop of a task due beyond Cloud Tasks' 30-day horizon: schedule the next hop (or the
    # task itself). If that fails, 503 has Cloud Tasks deliver this hop again.
    try:
        # A redelivered hop finds its next hop already created: that is success.
        await app.transport.asend(message, SendOptions(on_duplicate="ignore"))
    except Exception as exc:
        logger.warning("task %s[%s]: relay hop failed (%r), will be redelivered",
                       task.name, message.id, exc)
        return answer(Outcome.REQUEUE, {"id": message.id, "task": task.name,
                                         "state": STATE[Outcome.REQUEUE]})
    logger.info("task %s[%s] relayed towards its ETA %s", task.name, message.id, message.eta)
    return answer(Outcome.RELAYED, {"id": message.id, "task": task.name,
                                     "state": STATE[Outcome.RELAYED]})


async def _beat(app: Celery, entry: str, request: Request) -> Response:
    # One fire of a Cloud Scheduler job: send the entry's task, named from the job and the
    # schedule time, so a retried fire sends nothing twice.
    from .. import beat

    job_name = request.headers.get("x-cloudscheduler-jobname")
    stamp = request.headers.get("x-cloudscheduler-scheduletime")
    try:
        when = datetime.fromisoformat(stamp) if stamp else None
        if when is not None and when.tzinfo is None:
            raise ValueError("no time zone")
        if when is not None:
            when = when.astimezone(UTC)  # and within datetime's range in UTC
    except (ValueError, OverflowError) as exc:
        return answer(Outcome.MALFORMED, {"detail": f"X-CloudScheduler-ScheduleTime {stamp!r} "
                                                     f"is not an RFC 3339 time: {exc}"})
    if job_name is not None and not _JOB_ID.match(job_name):
        return answer(Outcome.MALFORMED, {"detail": f"X-CloudScheduler-JobName {job_name!r} "
                                                     "is not a Cloud Scheduler job id"})
    try:
        fired = await run_in_threadpool(beat.fire, app, entry, job_name, when)
    except KeyError:
        logger.warning("beat: no beat_schedule entry has the id %r (removed from the code? "
                       "run `celery-gcp beat sync --prune`)", entry)
        return answer(Outcome.UNKNOWN_TASK, {"detail": f"unknown beat entry {entry!r}"})
    except (ImproperlyConfigured, TaskArgumentError, ValueError) as exc:
        logger.error("beat: entry %r cannot run: %s", entry, exc)
        return answer(Outcome.REDELIVER, {"detail": str(exc)})
    except TransportError as exc:
        logger.warning("beat: entry %r could not send its task (%r); the fire is retried",
                       entry, exc)
        return answer(Outcome.REQUEUE, {"detail": str(exc)})
    content = {"entry": fired.entry, "task": fired.task, "task_ids": fired.task_ids,
               "schedule_time": fired.schedule_time.isoformat()}
    if fired.skipped:
        logger.info("beat: entry %r skipped: %s", fired.entry, fired.skipped)
        return answer(Outcome.IGNORED, {**content, "skipped": fired.skipped})
    logger.info("beat: entry %r sent %s %s", fired.entry, fired.task, fired.task_ids)
    return answer(Outcome.SUCCESS, content)


def expired(task: Task[..., Any], message: Message) -> Response:
    """Skip a task past its ``expires`` (200, logged, ``task_revoked`` fired)."""
    logger.info("task %s[%s] expired at %s: skipped", task.name, message.id, message.expires)
    if signals.task_revoked.receivers:
        request = Context(id=message.id, task=task.name, called_directly=False)
        signals.task_revoked.send(sender=task, request=request, terminated=False,
                                  signum=None, expired=True)
    return answer(Outcome.EXPIRED, {"id": message.id, "task": task.name,
                                     "state": STATE[Outcome.EXPIRED]})
