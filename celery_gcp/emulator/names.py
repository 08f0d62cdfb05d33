"""Resource names of Cloud Tasks and Cloud Scheduler, validated as the real services do."""

from __future__ import annotations

import re

from ..exceptions import EmulatorError

__all__ = ["InvalidName", "job_name", "queue_name", "short_id", "task_name"]

_PROJECT = r"[A-Za-z0-9:.\-]{1,100}"
_LOCATION = r"[a-z0-9\-]{1,63}"
_LOCATION_PATH = re.compile(rf"^projects/{_PROJECT}/locations/{_LOCATION}\Z")
_QUEUE = re.compile(rf"^projects/{_PROJECT}/locations/{_LOCATION}/queues/[A-Za-z0-9\-]{{1,100}}\Z")
_TASK = re.compile(r"^(?P<queue>.+)/tasks/[A-Za-z0-9_\-]{1,500}\Z")
_JOB = re.compile(rf"^projects/{_PROJECT}/locations/{_LOCATION}/jobs/[A-Za-z0-9_\-]{{1,500}}\Z")


class InvalidName(EmulatorError, ValueError):
    """A resource name that does not have the service's format."""


def location(name: str) -> str:
    """Check a ``projects/P/locations/L`` parent."""
    if not _LOCATION_PATH.match(name):
        raise InvalidName(
            f"invalid parent {name!r}: expected projects/PROJECT_ID/locations/LOCATION_ID"
        )
    return name


def queue_name(name: str) -> str:
    """Check a queue name: ``projects/P/locations/L/queues/Q``, Q of ``[A-Za-z0-9-]{1,100}``."""
    if not _QUEUE.match(name):
        raise InvalidName(
            f"invalid queue name {name!r}: expected "
            "projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID with QUEUE_ID of 1 to 100 "
            "letters, digits or hyphens"
        )
    return name


def task_name(name: str, queue: str) -> str:
    """Check a task name under ``queue``: ``QUEUE/tasks/T``, T of ``[A-Za-z0-9_-]{1,500}``."""
    match = _TASK.match(name)
    if not match or match.group("queue") != queue:
        raise InvalidName(
            f"invalid task name {name!r}: expected {queue}/tasks/TASK_ID with TASK_ID of 1 to "
            "500 letters, digits, hyphens or underscores"
        )
    return name


def job_name(name: str) -> str:
    """Check a job name: ``projects/P/locations/L/jobs/J``, J of ``[A-Za-z0-9_-]{1,500}``."""
    if not _JOB.match(name):
        raise InvalidName(
            f"invalid job name {name!r}: expected projects/PROJECT_ID/locations/LOCATION_ID/"
            "jobs/JOB_ID with JOB_ID of 1 to 500 letters, digits, hyphens or underscores"
        )
    return name


def short_id(name: str) -> str:
    """The last segment of a resource name (what the X-CloudTasks-* headers carry)."""
    return name.rsplit("/", 1)[-1]


def parent_of(name: str, levels: int = 2) -> str:
    """``name`` without its last ``levels`` segments."""
    return name.rsplit("/", levels)[0]
