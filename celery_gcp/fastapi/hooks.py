"""Hooks that adjust a request just before it is sent: ``pre_create_hook=`` of the builders.

A delayed-task hook takes the ``tasks_v2.CreateTaskRequest`` and returns the request to send; a
scheduled-job hook does the same with the ``scheduler_v1.CreateJobRequest`` (its job is also
what an existing job is updated to). Hooks may change the request in place and return it.

Example::

    from google.cloud import tasks_v2

    hook = chained_hook(
        oidc_delayed_hook(tasks_v2.OidcToken(service_account_email=SA, audience=URL)),
        deadline_delayed_hook(timedelta(minutes=10)),
    )
    DelayedRoute = DelayedRouteBuilder(queue_path=QUEUE, base_url=URL, pre_create_hook=hook)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from google.cloud import scheduler_v1, tasks_v2
    from google.protobuf import duration_pb2

__all__ = [
    "DelayedTaskHook",
    "ScheduledHook",
    "chained_hook",
    "deadline_delayed_hook",
    "deadline_scheduled_hook",
    "noop_hook",
    "oauth_delayed_hook",
    "oauth_scheduled_hook",
    "oidc_delayed_hook",
    "oidc_scheduled_hook",
]

#: ``(CreateTaskRequest) -> CreateTaskRequest``
DelayedTaskHook = Callable[["tasks_v2.CreateTaskRequest"], "tasks_v2.CreateTaskRequest"]
#: ``(CreateJobRequest) -> CreateJobRequest``
ScheduledHook = Callable[["scheduler_v1.CreateJobRequest"], "scheduler_v1.CreateJobRequest"]
_R = TypeVar("_R")


def noop_hook(request: _R) -> _R:
    """Return the request unchanged (the default)."""
    return request


def chained_hook(*hooks: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """One hook that applies ``hooks`` in order, each to what the previous one returned."""

    def chain(request: Any) -> Any:
        for hook in hooks:
            request = hook(request)
        return request

    return chain


def oidc_delayed_hook(token: tasks_v2.OidcToken | None = None) -> DelayedTaskHook:
    """Have Cloud Tasks send an OIDC token (for a Cloud Run service: the default
    ``tasks_v2.OidcToken()`` takes the queue's identity, audience the task URL)."""

    def hook(request: tasks_v2.CreateTaskRequest) -> tasks_v2.CreateTaskRequest:
        request.task.http_request.oidc_token = token if token is not None else _tasks().OidcToken()
        return request

    return hook


def oidc_scheduled_hook(token: scheduler_v1.OidcToken | None = None) -> ScheduledHook:
    """Have Cloud Scheduler send an OIDC token."""

    def hook(request: scheduler_v1.CreateJobRequest) -> scheduler_v1.CreateJobRequest:
        request.job.http_target.oidc_token = (
            token if token is not None else _scheduler().OidcToken())
        return request

    return hook


def oauth_delayed_hook(token: tasks_v2.OAuthToken | None = None) -> DelayedTaskHook:
    """Have Cloud Tasks send an OAuth access token (for Google APIs: ``*.googleapis.com``)."""

    def hook(request: tasks_v2.CreateTaskRequest) -> tasks_v2.CreateTaskRequest:
        request.task.http_request.oauth_token = (
            token if token is not None else _tasks().OAuthToken())
        return request

    return hook


def oauth_scheduled_hook(token: scheduler_v1.OAuthToken | None = None) -> ScheduledHook:
    """Have Cloud Scheduler send an OAuth access token."""

    def hook(request: scheduler_v1.CreateJobRequest) -> scheduler_v1.CreateJobRequest:
        request.job.http_target.oauth_token = (
            token if token is not None else _scheduler().OAuthToken())
        return request

    return hook


def deadline_delayed_hook(
        duration: timedelta | duration_pb2.Duration = timedelta(minutes=30)) -> DelayedTaskHook:
    """Let each attempt run up to ``duration`` (a ``timedelta`` or a protobuf ``Duration``;
    Cloud Tasks allows 15 s to 30 min)."""
    deadline = _deadline(duration, "Cloud Tasks")

    def hook(request: tasks_v2.CreateTaskRequest) -> tasks_v2.CreateTaskRequest:
        request.task.dispatch_deadline = deadline
        return request

    return hook


def deadline_scheduled_hook(
        duration: timedelta | duration_pb2.Duration = timedelta(minutes=30)) -> ScheduledHook:
    """Let each attempt run up to ``duration`` (a ``timedelta`` or a protobuf ``Duration``;
    Cloud Scheduler allows 15 s to 30 min)."""
    deadline = _deadline(duration, "Cloud Scheduler")

    def hook(request: scheduler_v1.CreateJobRequest) -> scheduler_v1.CreateJobRequest:
        request.job.attempt_deadline = deadline
        return request

    return hook


def _deadline(duration: Any, service: str) -> timedelta:
    """``duration`` as a ``timedelta``, checked against the 15 s to 30 min ``service``
    allows."""
    if isinstance(duration, timedelta):
        span = duration
    elif callable(getattr(duration, "ToTimedelta", None)):  # google.protobuf Duration
        span = duration.ToTimedelta()
    else:
        raise TypeError(f"deadline {duration!r}: give a datetime.timedelta or a "
                        "google.protobuf Duration")
    low, high = timedelta(seconds=15), timedelta(minutes=30)
    if not low <= span <= high:
        raise ValueError(f"a deadline of {span} is outside the {low} to {high} that "
                         f"{service} allows; split a longer job, or run it outside the request")
    return span


def _tasks() -> Any:
    from google.cloud import tasks_v2

    return tasks_v2


def _scheduler() -> Any:
    from google.cloud import scheduler_v1

    return scheduler_v1
