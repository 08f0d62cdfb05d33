"""The task endpoints (``app.router``): one POST endpoint per task at
``{task_endpoint_prefix}/{task name}``, the beat endpoint, and the unknown-task answer.

Each endpoint declares the task's argument schema as its JSON body (so it shows in OpenAPI and
FastAPI validates it: a body that does not validate gets 422) and the task's own FastAPI
dependencies, which FastAPI resolves per request. Every request goes through the delivery
pipeline (:mod:`celery_gcp.worker.delivery`): an endpoint admits the validated delivery, runs
it, and answers from the outcome table (:mod:`celery_gcp.worker.outcomes`).
"""

from __future__ import annotations

import inspect
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Request, Response
from starlette.concurrency import run_in_threadpool

from .. import signals
from ..exceptions import ImproperlyConfigured, TaskArgumentError, TransportError
from ..platform import JOB_ID
from .delivery import DeliveryRoute, admit_validated, result_response, run
from .outcomes import Outcome, answer_outcome

if TYPE_CHECKING:
    from ..app import Celery
    from ..task import Task

__all__ = ["add_task_route", "build_router"]

logger = logging.getLogger("celery_gcp.worker")
_BODY = "celery_gcp_arguments"
_TASK = "__celery_gcp_task__"
_P = inspect.Parameter


class _TaskEndpointRoute(DeliveryRoute):
    """A route of ``app.router``: the endpoint's task (if any) is the delivered task."""

    admit_first = False

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.delivered_task = getattr(endpoint, _TASK, None)


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
    from .. import builtins

    builtins.ensure(app)  # celery.map / celery.starmap, served like any task
    route_class = type("TaskEndpointRoute", (_TaskEndpointRoute,), {"celery_app": app})
    router = APIRouter(route_class=route_class)
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
        return answer_outcome(Outcome.UNKNOWN_TASK, {"detail": f"unknown task {name!r}"})

    router.add_api_route(prefix + "/{name:path}", unknown_task, methods=["POST"],
                         include_in_schema=False)
    return router


def add_task_route(router: APIRouter, app: Celery, task: Task[..., Any]) -> None:
    """Add the endpoint of ``task`` to ``router`` (before its unknown-task catch-all)."""
    spec = task.arguments
    has_body = bool(spec.signature.parameters)
    dependency_names = [p.name for p in spec.dependencies]

    async def endpoint(**params: Any) -> Response:
        values: dict[str, Any] = params.pop(_BODY) if has_body else {}
        delivery = await admit_validated(app)
        if isinstance(delivery, Response):
            return delivery
        result = await run(delivery, values, {n: params[n] for n in dependency_names})
        return result_response(task, delivery.message, result)

    parameters = []
    if has_body:
        parameters.append(_P(_BODY, _P.KEYWORD_ONLY, annotation=spec.schema, default=Body()))
    parameters += [p.replace(kind=_P.KEYWORD_ONLY) for p in spec.dependencies]
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = task.name.replace(".", "_")
    setattr(endpoint, _TASK, task)
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
        return answer_outcome(Outcome.MALFORMED, {
            "detail": f"X-CloudScheduler-ScheduleTime {stamp!r} is not an RFC 3339 time: {exc}"})
    if job_name is not None and not JOB_ID.match(job_name):
        return answer_outcome(Outcome.MALFORMED, {
            "detail": f"X-CloudScheduler-JobName {job_name!r} is not a Cloud Scheduler job id"})
    try:
        fired = await run_in_threadpool(beat.fire, app, entry, job_name, when)
    except KeyError:
        logger.warning("beat: no beat_schedule entry has the id %r (removed from the code? "
                       "run `celery-gcp beat sync --prune`)", entry)
        return answer_outcome(Outcome.UNKNOWN_TASK, {"detail": f"unknown beat entry {entry!r}"})
    except (ImproperlyConfigured, TaskArgumentError, ValueError) as exc:
        logger.error("beat: entry %r cannot run: %s", entry, exc)
        return answer_outcome(Outcome.REDELIVER, {"detail": str(exc)})
    except TransportError as exc:
        logger.warning("beat: entry %r could not send its task (%r); the fire is retried",
                       entry, exc)
        return answer_outcome(Outcome.REQUEUE, {"detail": str(exc)})
    content = {"entry": fired.entry, "task": fired.task, "task_ids": fired.task_ids,
               "schedule_time": fired.schedule_time.isoformat()}
    if fired.skipped:
        logger.info("beat: entry %r skipped: %s", fired.entry, fired.skipped)
        return answer_outcome(Outcome.IGNORED, {**content, "skipped": fired.skipped})
    logger.info("beat: entry %r sent %s %s", fired.entry, fired.task, fired.task_ids)
    return answer_outcome(Outcome.SUCCESS, content)
