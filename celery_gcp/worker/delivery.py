"""The delivery pipeline: every request Cloud Tasks or Cloud Scheduler makes to a worker.

Task endpoints (``app.router``), ``app.TaskRoute`` routes and the beat endpoint are all made
of :class:`DeliveryRoute`, whose handler runs the same steps in this order::

    intake    the caller's token (401/403), size (413), content type (415), JSON (400):
              the body, read once (:mod:`celery_gcp.worker.intake`)
    decode    the X-Celery-* metadata -> Message (400)
    admit     past its expires, or revoked: skipped (200); with a result store and
              worker_deduplicate_successful_tasks, already succeeded: not run (200);
              a relay hop: sent on towards its ETA
    validate  FastAPI: the body against the task's schema (422), dependencies resolved
    run       TaskRun: the layers, the task's hooks, the task, callbacks, autoretry
    answer    the run's Outcome, as the outcome table's HTTP status

The body read (and parsed) at intake is handed to FastAPI through a ``Request`` subclass
whose ``body()`` and ``json()`` return it, so the body is read and parsed once and nothing
writes Starlette's private attributes.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .. import logfields, states, tracing
from ..context import CloudTasksDelivery
from ..exceptions import MessageDecodeError, ResultStoreError, TaskRevokedError
from ..message import HttpTarget, Message
from ..platform import RELAY_HEADER
from ..results.codec import decode_result
from ..results.layer import ignores_result
from ..transport import SendOptions
from .intake import Intake, intake, invalid
from .outcomes import STATE, Outcome, answer_outcome
from .run import RunResult, TaskRun, run_async, run_sync

if TYPE_CHECKING:
    from ..app import Celery
    from ..task import Task

__all__ = ["Admitted", "DeliveryRoute", "admit_delivery", "admit_validated", "admitted",
           "expired", "metadata", "result_response", "run", "skip_expired"]

logger = logging.getLogger("celery_gcp.worker")
_RELAY = RELAY_HEADER.lower()
_METADATA_PREFIXES = (b"x-celery-", b"x-cloudtasks-", b"traceparent", b"tracestate",
                      b"x-cloud-trace-context")
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True, slots=True)
class Admitted:
    """A delivery that passed intake, decode and admit: the task, its message, and the
    platform's delivery headers."""

    task: Task[..., Any]
    message: Message
    cloudtasks: CloudTasksDelivery | None


@dataclass(frozen=True, slots=True)
class _Pending:
    """A delivery past intake whose decode and admit wait for FastAPI's validation."""

    task: Task[..., Any]
    headers: dict[str, str]
    body: bytes
    target: HttpTarget | None


# The delivery being handled: admitted, or pending until its endpoint admits it.
_DELIVERY: contextvars.ContextVar[Admitted | _Pending | None] = contextvars.ContextVar(
    "celery_gcp_delivery", default=None)


def admitted() -> Admitted | None:
    """The delivery being handled in this context (``None`` in a plain HTTP call)."""
    delivery = _DELIVERY.get()
    return delivery if isinstance(delivery, Admitted) else None


async def admit_validated(app: Celery) -> Admitted | Response:
    """Decode and admit the delivery whose body FastAPI just validated (task endpoints), or
    the answer that ends it before a run."""
    pending = _DELIVERY.get()
    assert isinstance(pending, _Pending), "only a DeliveryRoute's endpoint admits a delivery"
    return await _admitted(app, pending)


async def _admitted(app: Celery, pending: _Pending) -> Admitted | Response:
    message = await admit_delivery(app, pending.task, pending.headers, pending.body,
                                   pending.target)
    if isinstance(message, Response):
        return message
    return Admitted(pending.task, message, CloudTasksDelivery.from_headers(pending.headers))


class DeliveryRoute(APIRoute):
    """An ``APIRoute`` whose requests go through the delivery pipeline.

    ``delivered_task`` is the task the route runs (``None`` for the beat endpoint and the
    unknown-task answer, which take only the intake step).
    """

    celery_app: ClassVar[Celery]
    delivered_task: Task[..., Any] | None = None
    #: Decode and admit before FastAPI validates the body (``app.TaskRoute``: so a route's
    #: dependencies are not resolved for a delivery that will not run); task endpoints
    #: validate first (422 before 400) and admit in the endpoint (:func:`admit_validated`).
    admit_first: ClassVar[bool] = True

    def is_delivery(self, request: Request) -> bool:
        """Whether ``request`` is a delivery (a plain HTTP call of a TaskRoute is not)."""
        return True

    def delivered_target(self, request: Request) -> HttpTarget | None:
        """The delivered request as a message target (``None``: the task endpoint)."""
        return None

    def get_route_handler(self) -> Handler:
        """FastAPI's handler behind the pipeline's intake, decode and admit steps."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            if not self.is_delivery(request):
                return await handler(request)
            headers = metadata(request)
            task = self.delivered_task
            # The delivery's trace is current while it is handled (its task's sends hand it
            # on), and its task fields are on every log line, the worker's own included.
            traced = tracing.use(tracing.TraceContext.from_headers(headers)
                                 if _traced(headers) else None)
            logged = logfields.delivering(_log_fields(task, headers))
            try:
                return await self._handle(handler, request, headers, task)
            finally:
                logfields.done(logged)
                tracing.reset(traced)

        return handle

    async def _handle(self, handler: Handler, request: Request, headers: dict[str, str],
                      task: Task[..., Any] | None) -> Response:
        app = self.celery_app
        taken = await intake(app, request)
        if isinstance(taken, Response):
            return taken
        request = _Delivered(request, taken)
        token = None
        if task is not None:
            pending = _Pending(task, headers, taken.body, self.delivered_target(request))
            if not self.admit_first:
                token = _DELIVERY.set(pending)
            else:
                delivery = await _admitted(app, pending)
                if isinstance(delivery, Response):
                    return delivery
                token = _DELIVERY.set(delivery)
        try:
            return await handler(request)
        except RequestValidationError as exc:
            return invalid(exc)
        finally:
            if token is not None:
                _DELIVERY.reset(token)


def _traced(headers: Mapping[str, str]) -> bool:
    return "traceparent" in headers or "x-cloud-trace-context" in headers


def _log_fields(task: Task[..., Any] | None, headers: Mapping[str, str]) -> dict[str, Any]:
    """The task fields of a delivery's log lines, from its headers (before it is decoded)."""
    return {"task_id": headers.get("x-celery-task-id"),
            "task_name": task.name if task is not None else None,
            "task_retries": headers.get("x-celery-retries"),
            "task_queue": headers.get("x-celery-queue") or headers.get("x-cloudtasks-queuename"),
            "cloudtasks_task_name": headers.get("x-cloudtasks-taskname")}


class _Delivered(Request):
    """The request as FastAPI reads it after intake: its body and JSON, as intake read them."""

    def __init__(self, request: Request, taken: Intake) -> None:
        super().__init__(request.scope, request.receive)
        self._taken = taken

    async def body(self) -> bytes:
        """The body, read once at intake."""
        return self._taken.body

    async def json(self) -> Any:
        """The body's JSON, parsed once at intake."""
        return self._taken.json


def metadata(request: Request) -> dict[str, str]:
    """The request's ``X-Celery-*`` and ``X-CloudTasks-*`` headers, by lower-case name."""
    # One pass over the raw headers (names are lower case in ASGI) instead of a scan per
    # lookup: only the X-Celery-* and X-CloudTasks-* ones, and the trace's, are read.
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in request.scope["headers"]
        if name.startswith(_METADATA_PREFIXES)
    }


async def admit_delivery(app: Celery, task: Task[..., Any], headers: Mapping[str, str],
                         body: bytes, target: HttpTarget | None = None) -> Message | Response:
    """Decode the message of a delivery (``target``: where it was delivered, for a route), or
    the answer that ends it before a run: bad metadata (400), past its ``expires`` (200),
    revoked or already succeeded (:func:`_settled`, 200), or a relay hop, sent on towards
    its ETA."""
    try:
        message = Message.from_http(task.name, headers, body)
    except MessageDecodeError as exc:
        return answer_outcome(Outcome.MALFORMED, {"detail": str(exc)})
    if target is not None:
        message = replace(message, target=target)
    if expired(message, app.now()):
        return await _expired(task, message)
    settled = await _settled(task, message)
    if settled is not None:
        return result_response(task, message, settled)
    if _RELAY in headers and message.eta is not None and message.eta > app.now():
        return await _relay(app, task, message)
    return message


async def run(delivery: Admitted, values: dict[str, Any],
              dependencies: dict[str, Any]) -> RunResult:
    """Run an admitted delivery whose body FastAPI validated into ``values`` (a sync task in
    the thread pool, an async one on the event loop)."""
    task = delivery.task
    run = TaskRun(task, delivery.message, values, dependencies,
                  cloudtasks=delivery.cloudtasks).announce()
    if task.is_async:
        return await run_async(run)
    return await run_in_threadpool(run_sync, run)


async def _settled(task: Task[..., Any], message: Message) -> RunResult | None:
    """With a store: the answer to a delivery that must not run, or ``None`` to run it. A
    task revoked (``AsyncResult.revoke()`` stored REVOKED: the Cloud Tasks task may not have
    been deleted, or it is a retry) is skipped, as Celery's workers skip revoked ids; with
    ``worker_deduplicate_successful_tasks``, one that already succeeded is not run again."""
    app = task.app
    store = app.backend
    if store is None:
        return None
    try:
        meta = await store.aget_meta(message.id)
    except Exception as exc:  # cannot tell: have it delivered again rather than guess
        logger.warning("task %s[%s]: the result store could not be read (%r), will be "
                       "redelivered", task.name, message.id, exc)
        return RunResult(Outcome.REQUEUE, ResultStoreError(
            f"the result store could not be read for task {message.id}: {exc!r}"))
    status = None if meta is None else meta.get("status")
    if status == states.REVOKED:
        unstored = await skip(task, message, "revoked")
        if unstored is not None:
            return RunResult(Outcome.REQUEUE, unstored)
        logger.info("task %s[%s] was revoked: skipped", task.name, message.id)
        return RunResult(Outcome.REVOKED, TaskRevokedError("revoked"))
    if status != states.SUCCESS or not app.conf.get("worker_deduplicate_successful_tasks"):
        return None
    assert meta is not None
    logger.info("task %s[%s] already succeeded: not run again", task.name, message.id)
    return RunResult(Outcome.SUCCESS, decode_result(meta))


async def skip(task: Task[..., Any], message: Message, reason: str,
               ) -> ResultStoreError | None:
    """Run the layers' ``skipped`` step for a delivery not run (``reason``: ``expired`` or
    ``revoked``); returns the store's error if what a layer records could not be stored."""
    try:
        for skipped in task.app.layers.step("skipped"):
            pending = skipped(task, message, reason)
            if pending is not None:
                await pending
    except ResultStoreError as exc:
        logger.warning("task %s[%s] %s: %s; answering 503 so it is delivered again",
                       task.name, message.id, reason, exc)
        return exc
    return None


def result_response(task: Task[..., Any], message: Message, result: RunResult) -> Response:
    """The answer of a finished run (the return value, unless results are ignored)."""
    content: dict[str, Any] = {"id": message.id, "task": task.name, "state": result.state}
    if result.outcome is Outcome.SUCCESS:
        if not ignores_result(task, message):
            content["result"] = result.retval
    else:
        content["error"] = repr(result.retval)[:1000]
    return answer_outcome(result.outcome, content)


async def _relay(app: Celery, task: Task[..., Any], message: Message) -> Response:
    """Send the next hop of a task due beyond Cloud Tasks' horizon (503 if that fails, so
    Cloud Tasks delivers this hop again)."""
    try:
        # A redelivered hop finds its next hop already created: that is success.
        await app.sender.aforward(message, SendOptions(on_duplicate="ignore"))
    except Exception as exc:
        logger.warning("task %s[%s]: relay hop failed (%r), will be redelivered",
                       task.name, message.id, exc)
        return answer_outcome(Outcome.REQUEUE, {"id": message.id, "task": task.name,
                                                 "state": STATE[Outcome.REQUEUE]})
    logger.info("task %s[%s] relayed towards its ETA %s", task.name, message.id, message.eta)
    return answer_outcome(Outcome.RELAYED, {"id": message.id, "task": task.name,
                                             "state": STATE[Outcome.RELAYED]})


def expired(message: Message, now: datetime) -> bool:
    """Whether ``message`` is past its ``expires`` at ``now``."""
    return message.expires is not None and message.expires <= now


def skip_expired(message: Message) -> Response:
    """The answer to a delivery past its ``expires``: 200, logged, nothing run."""
    logger.info("task %s[%s] expired at %s: skipped", message.task, message.id, message.expires)
    return answer_outcome(Outcome.EXPIRED, {"id": message.id, "task": message.task,
                                             "state": STATE[Outcome.EXPIRED]})


async def _expired(task: Task[..., Any], message: Message) -> Response:
    """Skip a task past its ``expires`` (:func:`skip_expired`, after the layers' ``skipped``
    step; 503 if a layer could not store what it records)."""
    unstored = await skip(task, message, "expired")
    if unstored is not None:
        return answer_outcome(Outcome.REQUEUE, {"id": message.id, "task": task.name,
                                                 "state": STATE[Outcome.REQUEUE]})
    return skip_expired(message)
