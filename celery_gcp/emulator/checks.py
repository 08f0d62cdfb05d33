"""What CreateQueue / UpdateQueue and CreateTask refuse: the documented limits of a queue's
settings and of a task, each answered INVALID_ARGUMENT with what was wrong."""

from __future__ import annotations

import re
from typing import Any

import grpc

from ..platform import (
    DEADLINE_RANGE,
    MAX_HEADER_BYTES,
    MAX_SCHEDULE_AHEAD,
    MAX_TASK_BYTES,
    MAX_URL_LENGTH,
)
from .core import from_duration, from_timestamp
from .outgoing import BODY_METHODS
from .rpc import RpcError

__all__ = ["check_headers", "check_limits", "check_task"]

_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_MAX_RATE = 500.0
_MAX_CONCURRENT = 5000
_MIN_DEADLINE, _MAX_DEADLINE = DEADLINE_RANGE


def check_limits(queue: Any) -> None:
    """Refuse a queue's rate limits or retry config outside what Cloud Tasks accepts."""
    rate = queue.rate_limits
    if not 0 <= rate.max_dispatches_per_second <= _MAX_RATE:
        raise RpcError(_INVALID, f"max_dispatches_per_second {rate.max_dispatches_per_second} "
                                 f"is outside 0..{_MAX_RATE:g}")
    if not 0 <= rate.max_concurrent_dispatches <= _MAX_CONCURRENT:
        raise RpcError(_INVALID, f"max_concurrent_dispatches {rate.max_concurrent_dispatches} "
                                 f"is outside 0..{_MAX_CONCURRENT}")
    retry = queue.retry_config
    for field in ("min_backoff", "max_backoff", "max_retry_duration"):
        if retry.HasField(field) and from_duration(getattr(retry, field)) < 0:
            raise RpcError(_INVALID, f"retry_config.{field} must not be negative")
    if retry.max_attempts < -1:
        raise RpcError(_INVALID, f"max_attempts {retry.max_attempts} must be -1 or more")
    if retry.max_doublings < 0:
        raise RpcError(_INVALID, f"max_doublings {retry.max_doublings} must be 0 or more")
    if (retry.HasField("min_backoff") and retry.HasField("max_backoff")
            and from_duration(retry.min_backoff) > from_duration(retry.max_backoff)):
        raise RpcError(_INVALID, "min_backoff must not exceed max_backoff")


def check_task(task: Any, now: float) -> None:
    """Refuse a task Cloud Tasks would refuse at create (target, URL, headers, body,
    schedule time, deadline, size): one the handler could never be sent stays out."""
    if not task.HasField("http_request"):
        raise RpcError(_INVALID, "the emulator dispatches HTTP targets only: set http_request")
    url = task.http_request.url
    if not url.startswith(("http://", "https://")):
        raise RpcError(_INVALID, f"http_request.url {url!r} must be an http(s) URL")
    if len(url) > MAX_URL_LENGTH:
        raise RpcError(_INVALID, f"http_request.url is {len(url)} characters; at most "
                                 f"{MAX_URL_LENGTH}")
    if any(c in url for c in "\r\n\0 "):
        raise RpcError(_INVALID, f"http_request.url {url!r} holds a space or control character")
    check_headers(task.http_request.headers)
    if task.http_request.body and task.http_request.http_method not in BODY_METHODS:
        raise RpcError(_INVALID, "http_request.body is allowed only with POST, PUT or PATCH")
    if task.HasField("schedule_time"):
        if not _MIN_SECONDS <= task.schedule_time.seconds <= _MAX_SECONDS:
            raise RpcError(_INVALID, "schedule_time must be between years 1 and 9999")
        ahead = from_timestamp(task.schedule_time) - now
        if ahead > MAX_SCHEDULE_AHEAD:
            raise RpcError(_INVALID, f"schedule_time is {ahead / 86400:.1f} days ahead; Cloud "
                                     "Tasks accepts at most 30 days")
    if task.HasField("dispatch_deadline"):
        deadline = from_duration(task.dispatch_deadline)
        if not _MIN_DEADLINE <= deadline <= _MAX_DEADLINE:
            raise RpcError(_INVALID, f"dispatch_deadline {deadline:g}s is outside 15s..30min")
    size = task.ByteSize()
    if size > MAX_TASK_BYTES:
        raise RpcError(_INVALID, f"task size {size} bytes exceeds the 1 MB limit")


def check_headers(headers: Any) -> None:
    """Header names must be HTTP tokens, values free of CR, LF and NUL, and the whole under
    the documented 80 KB: a task the handler could never be sent is refused at create."""
    total = 0
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise RpcError(_INVALID, f"http_request.headers: {name!r} is not an HTTP header name")
        if any(c in value for c in "\r\n\0"):
            raise RpcError(_INVALID, f"http_request.headers[{name!r}] holds a CR, LF or NUL")
        total += len(name) + len(value) + 4
    if total >= MAX_HEADER_BYTES:
        raise RpcError(_INVALID, f"http_request.headers are {total} bytes; they must be under "
                                 f"{MAX_HEADER_BYTES}")


# RFC 9110 token characters, for header names.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Timestamp's range: 0001-01-01 to 9999-12-31.
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799
