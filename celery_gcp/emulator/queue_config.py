"""A queue's settings as Cloud Tasks fills and applies them: the defaults of a queue created
without them, the retry backoff, a task's own ``retry_config`` over its queue's, and when a
task's retries end."""

from __future__ import annotations

import math
from typing import Any

from google.cloud import tasks_v2

from .core import from_duration, from_timestamp

__all__ = ["DEFAULT_DISPATCH_DEADLINE", "apply_queue_defaults", "retries_exhausted",
           "retry_config_of", "retry_delay"]

_RUNNING = int(tasks_v2.Queue.State.RUNNING)  # an int, as the raw protobuf field

# Cloud Tasks' defaults for a queue created without them.
DEFAULT_RATE = 500.0
DEFAULT_CONCURRENT = 1000
DEFAULT_MAX_ATTEMPTS = 100
DEFAULT_MIN_BACKOFF = 0.1
DEFAULT_MAX_BACKOFF = 3600.0
DEFAULT_MAX_DOUBLINGS = 16
DEFAULT_DISPATCH_DEADLINE = 600.0


def apply_queue_defaults(queue: Any) -> None:
    """Fill the fields the service fills when a queue leaves them unset."""
    rate = queue.rate_limits
    if not rate.max_dispatches_per_second:
        rate.max_dispatches_per_second = DEFAULT_RATE
    # Output only: the service picks the burst from the rate, "generally at least equal to
    # max_dispatches_per_second".
    rate.max_burst_size = max(1, math.ceil(rate.max_dispatches_per_second))
    if not rate.max_concurrent_dispatches:
        rate.max_concurrent_dispatches = DEFAULT_CONCURRENT
    retry = queue.retry_config
    if not retry.max_attempts:
        retry.max_attempts = DEFAULT_MAX_ATTEMPTS
    if not retry.HasField("min_backoff"):
        retry.min_backoff.FromNanoseconds(int(DEFAULT_MIN_BACKOFF * 1e9))
    if not retry.HasField("max_backoff"):
        retry.max_backoff.FromNanoseconds(int(DEFAULT_MAX_BACKOFF * 1e9))
    if not retry.max_doublings:
        retry.max_doublings = DEFAULT_MAX_DOUBLINGS
    retry.max_retry_duration.nanos = 0  # "truncated to the nearest second", as the field says
    if not queue.state:
        queue.state = _RUNNING


def retry_delay(retry_config: Any, retries: int) -> float:
    """The wait before retry number ``retries + 1`` (0-based), by Cloud Tasks' rule.

    The interval starts at ``min_backoff``, doubles ``max_doublings`` times, then grows
    linearly by the last doubled step, and never exceeds ``max_backoff``.

    >>> from google.cloud import tasks_v2
    >>> rc = tasks_v2.RetryConfig.pb()(max_doublings=3)
    >>> rc.min_backoff.FromSeconds(10); rc.max_backoff.FromSeconds(300)
    >>> [retry_delay(rc, k) for k in range(8)]
    [10.0, 20.0, 40.0, 80.0, 160.0, 240.0, 300.0, 300.0]
    """
    low = from_duration(retry_config.min_backoff)
    high = from_duration(retry_config.max_backoff)
    # Past the cap the doubling changes nothing, and 2.0**1024 would overflow.
    doublings = min(retry_config.max_doublings, _MAX_EXPONENT)
    if retries <= doublings:
        delay = low * 2.0**retries
    else:
        delay = low * 2.0**doublings * (retries - doublings + 1)
    return float(min(high, delay))


# 2.0 ** 1000 is about 1e301: any backoff doubled that often is past any max_backoff.
_MAX_EXPONENT = 1000


def retry_config_of(queue: Any, task: Any) -> Any:
    """The retry config of ``task``: its own (``Task.retry_config``, "overrides the
    queue's"), field by field over ``queue``'s, or the queue's."""
    if not task.HasField("retry_config"):
        return queue.retry_config
    merged = tasks_v2.RetryConfig.pb()()
    merged.CopyFrom(queue.retry_config)
    merged.MergeFrom(task.retry_config)
    return merged


def retries_exhausted(retry: Any, task: Any, now: float) -> bool:
    """Whether ``task`` (``retry``: its retry config) gets no more attempts at ``now``."""
    by_attempts = retry.max_attempts != -1 and task.dispatch_count >= retry.max_attempts
    limit = from_duration(retry.max_retry_duration)
    by_time = limit > 0 and now - from_timestamp(task.first_attempt.dispatch_time) >= limit
    if retry.max_attempts != -1 and limit > 0:
        return by_attempts and by_time  # both limits must be reached (the service's rule)
    return by_attempts or by_time
