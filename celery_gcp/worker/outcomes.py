"""The worker's outcome table: how each way a run can end maps to an HTTP status.

Cloud Tasks retries any non-2xx answer, so this table decides what is delivered again.

=====================================================  ======  ==================================
outcome                                                status  why
=====================================================  ======  ==================================
SUCCESS                                                200     done
RETRY (``self.retry()``/autoretry, new task created)   200     exact Celery countdowns
FAILURE (``acks_on_failure_or_timeout=True``)          200     Celery does not redeliver failures
REDELIVER (``acks_on_failure_or_timeout=False``)       500     the queue's retry policy redelivers
REQUEUE (``Reject(requeue=True)``, retry send failed)  503     redeliver; nothing lost
IGNORED (``Ignore``, ``Reject(requeue=False)``)        200     dropped on purpose, logged
EXPIRED (past ``expires``)                             200     dropped on purpose, logged
REVOKED (``AsyncResult.revoke()``, seen in the store)  200     dropped on purpose, logged
RELAYED (a hop of a task due after 30 days, re-sent)   200     scheduled closer to its ETA
INVALID (body does not validate)                       422     a worker with the new schema
MALFORMED (bad ``X-Celery-*`` metadata)                400     never runs
UNKNOWN_TASK                                           404     never runs
=====================================================  ======  ==================================

The beat endpoint (a Cloud Scheduler fire) answers from the same table: SUCCESS (the entry's
task was sent), IGNORED (not a run day under Celery's crontab day rule), UNKNOWN_TASK (no such
entry), REQUEUE (the send failed: Cloud Scheduler retries the fire), REDELIVER (the entry cannot
run) and MALFORMED (bad ``X-CloudScheduler-*`` headers).
"""

from __future__ import annotations

import enum
import json
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json
from starlette import status
from starlette.responses import Response

from .. import states
from ..exceptions import Ignore, Reject, Retry

if TYPE_CHECKING:
    from ..task import Task

__all__ = ["STATE", "STATUS", "Outcome", "answer_outcome", "classify"]


class Outcome(enum.Enum):
    """How a request for a task ended."""

    SUCCESS = "success"
    RETRY = "retry"
    FAILURE = "failure"
    REDELIVER = "redeliver"
    REQUEUE = "requeue"
    IGNORED = "ignored"
    EXPIRED = "expired"
    REVOKED = "revoked"
    RELAYED = "relayed"
    INVALID = "invalid"
    MALFORMED = "malformed"
    UNKNOWN_TASK = "unknown_task"


STATUS: dict[Outcome, int] = {
    Outcome.SUCCESS: status.HTTP_200_OK,
    Outcome.RETRY: status.HTTP_200_OK,
    Outcome.FAILURE: status.HTTP_200_OK,
    Outcome.REDELIVER: status.HTTP_500_INTERNAL_SERVER_ERROR,
    Outcome.REQUEUE: status.HTTP_503_SERVICE_UNAVAILABLE,
    Outcome.IGNORED: status.HTTP_200_OK,
    Outcome.EXPIRED: status.HTTP_200_OK,
    Outcome.REVOKED: status.HTTP_200_OK,
    Outcome.RELAYED: status.HTTP_200_OK,
    Outcome.INVALID: status.HTTP_422_UNPROCESSABLE_CONTENT,
    Outcome.MALFORMED: status.HTTP_400_BAD_REQUEST,
    Outcome.UNKNOWN_TASK: status.HTTP_404_NOT_FOUND,
}

#: The Celery state each outcome leaves the task in.
STATE: dict[Outcome, str] = {
    Outcome.SUCCESS: states.SUCCESS,
    Outcome.RETRY: states.RETRY,
    Outcome.FAILURE: states.FAILURE,
    Outcome.REDELIVER: states.FAILURE,
    Outcome.REQUEUE: states.REJECTED,
    Outcome.IGNORED: states.IGNORED,
    Outcome.EXPIRED: states.REVOKED,
    Outcome.REVOKED: states.REVOKED,
    Outcome.RELAYED: states.PENDING,
    Outcome.INVALID: states.REJECTED,
    Outcome.MALFORMED: states.REJECTED,
    Outcome.UNKNOWN_TASK: states.REJECTED,
}


def classify(exc: BaseException, task: Task[..., object]) -> Outcome:
    """The outcome of a run that raised ``exc``."""
    if isinstance(exc, Retry):
        return Outcome.RETRY
    if isinstance(exc, Ignore):
        return Outcome.IGNORED
    if isinstance(exc, Reject):
        return Outcome.REQUEUE if exc.requeue else Outcome.IGNORED
    acks = task.acks_on_failure_or_timeout
    if acks is None:
        acks = bool(task.app.conf.task_acks_on_failure_or_timeout)
    return Outcome.FAILURE if acks else Outcome.REDELIVER


def answer_outcome(outcome: Outcome, content: dict[str, Any]) -> Response:
    """The JSON answer of ``outcome``, with its status from the outcome table."""
    try:
        body = to_json(content, fallback=repr)
    except ValueError:  # e.g. a result holding a lone surrogate: escape what cannot be encoded
        body = json.dumps(content, default=repr, ensure_ascii=True).encode()
    return Response(body, status_code=STATUS[outcome], media_type="application/json")
