"""FastAPI dependencies that read what Cloud Tasks and Cloud Scheduler say about a request.

Example::

    @router.post("/charge")
    def charge(order: Order, tasks: CloudTasksHeaders = Depends(),
               _: None = Depends(max_retries(5))) -> None:
        if tasks.retry_count:
            log.info("attempt %d", tasks.retry_count + 1)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header, HTTPException
from starlette import status

from ..context import CloudTasksDelivery, _int

__all__ = ["CloudSchedulerHeaders", "CloudTasksHeaders", "max_retries"]

_EPOCH = datetime.fromtimestamp(0, UTC)


class CloudTasksHeaders:
    """The ``X-CloudTasks-*`` headers (use as ``headers: CloudTasksHeaders = Depends()``),
    with fastapi-gcp-tasks' field types.

    Outside Cloud Tasks (a direct call), the names are ``""``, the counts and
    ``previous_response`` 0 and ``eta`` the epoch. Numbers that do not read as such read as
    0, as the worker reads them.
    """

    def __init__(
        self,
        x_cloudtasks_queuename: Annotated[str | None, Header()] = None,
        x_cloudtasks_taskname: Annotated[str | None, Header()] = None,
        x_cloudtasks_taskretrycount: Annotated[str | None, Header()] = None,
        x_cloudtasks_taskexecutioncount: Annotated[str | None, Header()] = None,
        x_cloudtasks_tasketa: Annotated[str | None, Header()] = None,
        x_cloudtasks_taskpreviousresponse: Annotated[str | None, Header()] = None,
        x_cloudtasks_taskretryreason: Annotated[str | None, Header()] = None,
    ) -> None:
        given = {
            "x-cloudtasks-queuename": x_cloudtasks_queuename or "",
            "x-cloudtasks-taskname": x_cloudtasks_taskname,
            "x-cloudtasks-taskretrycount": x_cloudtasks_taskretrycount,
            "x-cloudtasks-taskexecutioncount": x_cloudtasks_taskexecutioncount,
            "x-cloudtasks-tasketa": x_cloudtasks_tasketa,
            "x-cloudtasks-taskpreviousresponse": x_cloudtasks_taskpreviousresponse,
            "x-cloudtasks-taskretryreason": x_cloudtasks_taskretryreason,
        }
        delivery = CloudTasksDelivery.from_headers(
            {k: v for k, v in given.items() if v is not None})
        assert delivery is not None  # the queue name is always given above
        #: The queue's short id.
        self.queue_name: str = x_cloudtasks_queuename or ""
        #: The task's short id.
        self.task_name: str = delivery.task_name or ""
        #: How many times Cloud Tasks retried the task (0 on the first attempt).
        self.retry_count: int = delivery.retry_count
        #: Attempts that got an answer from the handler.
        self.execution_count: int = delivery.execution_count
        #: When the task was scheduled to run: a naive datetime in the local time zone (as
        #: ``datetime.fromtimestamp``); ``.astimezone(UTC)`` gives it in UTC.
        self.eta: datetime = (delivery.eta or _EPOCH).astimezone().replace(tzinfo=None)
        #: The HTTP status of the previous attempt (0 on the first).
        self.previous_response: int = _int(delivery.previous_response)
        #: Why the previous attempt failed.
        self.retry_reason: str = delivery.retry_reason or ""


class CloudSchedulerHeaders:
    """The ``X-CloudScheduler*`` headers (use as ``job: CloudSchedulerHeaders = Depends()``).

    ``schedule_time`` is when this run was due (UTC), which does not move when the request is
    retried: use it to make a run idempotent. A bad time answers 400.
    """

    def __init__(
        self,
        x_cloudscheduler: Annotated[str | None, Header()] = None,
        x_cloudscheduler_jobname: Annotated[str | None, Header()] = None,
        x_cloudscheduler_scheduletime: Annotated[str | None, Header()] = None,
    ) -> None:
        #: Whether Cloud Scheduler sent the request.
        self.is_scheduled = x_cloudscheduler == "true"
        #: The job's short id.
        self.job_name = x_cloudscheduler_jobname
        #: When this run was due.
        self.schedule_time: datetime | None = None
        if x_cloudscheduler_scheduletime:
            try:
                when = datetime.fromisoformat(x_cloudscheduler_scheduletime)
                if when.tzinfo is None:
                    raise ValueError("no time zone")
                self.schedule_time = when.astimezone(UTC)
            except (ValueError, OverflowError):
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST,
                    f"X-CloudScheduler-ScheduleTime {x_cloudscheduler_scheduletime[:40]!r} is "
                    "not an RFC 3339 time") from None


def max_retries(count: int = 20) -> Callable[..., None]:
    """A dependency that lets the endpoint run for retry counts 0 to ``count - 1`` (``count``
    attempts in all, as fastapi-gcp-tasks counts); from then on it answers 200 ("Max retries
    exhausted") without running the endpoint, so Cloud Tasks does not deliver the task
    again."""

    def check(headers: Annotated[CloudTasksHeaders, Depends()]) -> None:
        if headers.retry_count >= count:
            raise HTTPException(status.HTTP_200_OK, "Max retries exhausted")

    return check
