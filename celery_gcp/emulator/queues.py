"""A Cloud Tasks queue at run time: its tasks, and the loop that dispatches them.

Each queue has its own dispatch loop, so a slow handler on one queue never holds up another.
The loop takes due tasks in schedule order, honours the queue's rate limits (a token bucket of
``max_dispatches_per_second`` with ``max_burst_size``) and ``max_concurrent_dispatches``,
retries failures by the queue's ``retry_config``, and removes a task once it is older than the
task retention ("After a task is 31 days old, the task will be deleted regardless of whether it
was dispatched or not", CreateQueue).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from typing import Any

from google.cloud import tasks_v2

from .core import Core, from_duration, from_timestamp, set_timestamp
from .dispatch import Attempt
from .names import short_id
from .outgoing import Authorization, apply_queue_target, authorization_of, caller_headers

__all__ = ["BODY_METHODS", "HTTP_METHODS", "QueueRunner", "TaskEntry", "apply_queue_defaults",
           "retry_delay"]

QueuePb: Any = tasks_v2.Queue.pb()
TaskPb: Any = tasks_v2.Task.pb()
# As plain ints: the raw protobuf fields they are compared with are ints, and proto-plus's
# Enum.__eq__ is Python code on the dispatch loop's every turn.
_RUNNING = int(tasks_v2.Queue.State.RUNNING)
_PAUSED = int(tasks_v2.Queue.State.PAUSED)
# The HttpMethod enum of both APIs: 1 = POST (the default), 2 = GET, ...
HTTP_METHODS = {1: "POST", 2: "GET", 3: "HEAD", 4: "PUT", 5: "DELETE", 6: "PATCH", 7: "OPTIONS"}
# The methods that may carry a body, in Cloud Tasks and Cloud Scheduler alike (0: unset, POST).
BODY_METHODS = frozenset({0, 1, 4, 6})
_seq = itertools.count()

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


class TaskEntry:
    """One task of a queue: its serialized protobuf and its place in the dispatch order.

    A pending task is kept as bytes (a parsed protobuf costs about 8 times more memory) and
    parsed when it is dispatched or read.
    """

    __slots__ = ("data", "due", "ended", "executions", "expires", "name", "running", "version")

    def __init__(self, name: str, due: float, data: bytes, expires: float = math.inf) -> None:
        self.name = name
        self.due = due
        self.data = data
        #: When the task retention deletes it (its creation plus the retention).
        self.expires = expires
        self.version = 0
        #: Attempts in flight (RunTask may start one while another is on its way).
        self.running = 0
        self.ended = False
        #: Attempts answered with other than a 5xx (``X-CloudTasks-TaskExecutionCount``);
        #: kept in memory only, as the Task resource has no field for it.
        self.executions = 0

    @property
    def pb(self) -> Any:
        """The task, parsed (a fresh copy: write changes back with :meth:`save`)."""
        return TaskPb.FromString(self.data)

    def save(self, pb: Any) -> bytes:
        """Keep the new state of the task; returns its bytes."""
        self.data = pb.SerializeToString()
        return self.data


class QueueRunner:
    """The tasks of one queue and the loop that dispatches them."""

    def __init__(self, pb: Any, core: Core) -> None:
        self.pb = pb
        self.core = core
        self.tasks: dict[str, TaskEntry] = {}
        self._heap: list[tuple[float, int, int, TaskEntry]] = []
        self._changed = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._tokens = float(pb.rate_limits.max_burst_size)
        self._refilled = core.clock.now()
        self._loop: asyncio.Task[None] | None = None

    def ramp_up(self) -> None:
        """Refill the token bucket from a tenth of its size, not from full.

        Cloud Tasks "ramps up slowly" when a paused queue is resumed and many tasks become
        available at once (the HttpRequest docs): a full bucket would send a whole second's
        worth in one instant. A tenth keeps a small head start, so a resumed queue still
        dispatches at once on the manual clock.
        """
        burst = float(self.pb.rate_limits.max_burst_size)
        self._tokens = min(self._tokens, max(1.0, burst / 10))
        self._refilled = self.core.clock.now()

    @property
    def name(self) -> str:
        """The queue's resource name."""
        return str(self.pb.name)

    def start(self) -> None:
        """Start dispatching (inside the running loop)."""
        self._loop = asyncio.create_task(self._run(), name=f"queue {self.name}")

    async def stop(self) -> None:
        """Stop dispatching; attempts in flight are cancelled (their tasks stay)."""
        for task in [self._loop, *self._in_flight]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._loop, *self._in_flight] if t is not None),
                             return_exceptions=True)

    def busy(self) -> bool:
        """Whether an attempt is in flight or a task is due (on a running queue)."""
        if self._in_flight:
            return True
        entry = self._peek()
        return (entry is not None and self.pb.state != _PAUSED
                and min(entry.due, entry.expires) <= self.core.clock.now())

    def changed(self) -> None:
        """Wake the dispatch loop (new task, resumed queue, new limits)."""
        self._changed.set()

    # -- tasks -----------------------------------------------------------------------------

    def add(self, entry: TaskEntry) -> None:
        """Add a task to dispatch at its schedule time."""
        self.tasks[entry.name] = entry
        self._push(entry, wake=self.pb.state != _PAUSED)

    def end(self, name: str) -> TaskEntry | None:
        """Remove a task (deleted, purged, done or given up); its name is tombstoned."""
        entry = self.tasks.pop(name, None)
        if entry is not None:
            entry.ended = True
            self.core.bury(name)
        return entry

    def run_now(self, entry: TaskEntry) -> None:
        """Dispatch a task at once, whatever its schedule time or the queue's state, even
        while an attempt of it is in flight (RunTask's documented behaviour)."""
        entry.version += 1
        self._start(entry)

    def expired(self, entry: TaskEntry, now: float) -> bool:
        """Whether the task retention deleted ``entry`` by ``now``: if so it is ended here
        (a paused queue's loop does not look at its tasks, so reads ask too)."""
        if entry.expires > now:
            return False
        self.end(entry.name)
        return True

    def _push(self, entry: TaskEntry, wake: bool = True) -> None:
        entry.version += 1
        # Ordered by what comes first, the dispatch or the retention's deletion (a retry's
        # backoff can end past it): the loop wakes for either.
        key = entry.due if entry.due < entry.expires else entry.expires
        heapq.heappush(self._heap, (key, next(_seq), entry.version, entry))
        if wake:  # a paused queue's loop has nothing to do until it is resumed
            self._changed.set()

    def _peek(self) -> TaskEntry | None:
        heap = self._heap
        while heap:
            _, _, version, entry = heap[0]
            if entry.ended or entry.running or version != entry.version:
                heapq.heappop(heap)
                continue
            return entry
        return None

    # -- dispatching -----------------------------------------------------------------------

    async def _run(self) -> None:
        clock = self.core.clock
        while True:
            self._changed.clear()
            entry = self._peek()
            if entry is None or self.pb.state == _PAUSED:
                await self._changed.wait()
                continue
            now = clock.now()
            if entry.expires <= now:  # inline: the one cost the retention adds per dispatch
                heapq.heappop(self._heap)
                self.end(entry.name)
                continue
            if entry.due > now:
                await clock.sleep_until(min(entry.due, entry.expires), self._changed)
                continue
            if len(self._in_flight) >= self.pb.rate_limits.max_concurrent_dispatches:
                await self._changed.wait()
                continue
            wait = self._take_token(now)
            if wait > 0:
                await clock.sleep_until(now + wait, self._changed)
                continue
            heapq.heappop(self._heap)
            self._start(entry)

    def _take_token(self, now: float) -> float:
        limits = self.pb.rate_limits
        rate = limits.max_dispatches_per_second
        self._tokens = min(float(limits.max_burst_size),
                           self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        # A thousandth under one token is one: the wait below is exact, but epoch-sized float
        # times can leave 0.9999 after it, and the manual clock would then never reach the
        # next wake-up. It costs at most 0.1% of the rate.
        if self._tokens >= 0.999:
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return float((1.0 - self._tokens) / rate)

    def _start(self, entry: TaskEntry) -> None:
        # The attempt counts from its dispatch ("includes attempts which have been dispatched
        # but haven't received a response"); the first attempt keeps only its dispatch time.
        pb = entry.pb
        retries = pb.dispatch_count
        dispatched = self.core.clock.now()
        pb.dispatch_count += 1
        if not retries:
            pb.first_attempt.Clear()
            set_timestamp(pb.first_attempt.dispatch_time, dispatched)
        entry.save(pb)
        entry.running += 1
        attempt = asyncio.create_task(self._attempt(entry, pb, retries, dispatched))
        self._in_flight.add(attempt)
        attempt.add_done_callback(self._done)

    def _done(self, attempt: asyncio.Task[None]) -> None:
        self._in_flight.discard(attempt)
        self._changed.set()

    async def _attempt(self, entry: TaskEntry, pb: Any, retries: int, dispatched: float,
                       ) -> None:
        core = self.core
        try:
            try:
                method, url, headers, body, deadline, auth = self._request(entry, pb, retries)
            except Exception as exc:  # the emulator's own failure: a failed attempt all the same
                result = Attempt(None, f"INTERNAL: {type(exc).__name__}: {exc}", 0.0)
            else:
                result = await core.sender.send(method, url, headers, body, deadline, auth)
        finally:
            entry.running -= 1
        if entry.ended:  # deleted or purged while in flight, or done by another attempt
            return
        if result.succeeded:  # the task is deleted: nothing to record on it
            core.log_dispatch(queue=short_id(self.name), task=short_id(entry.name),
                              attempt=retries + 1, status=result.status,
                              latency_ms=round(result.latency * 1000, 1))
            self.end(entry.name)
            return
        answered = core.clock.now()
        pb = entry.pb  # as it is now: another attempt may have been recorded meanwhile
        record = pb.last_attempt
        record.Clear()
        set_timestamp(record.schedule_time, entry.due)
        set_timestamp(record.dispatch_time, dispatched)
        if result.status is not None:
            set_timestamp(record.response_time, answered)
            record.response_status.code = _rpc_code(result.status)
        else:
            record.response_status.code = (4 if "DEADLINE" in result.reason
                                           else 13 if "INTERNAL" in result.reason else 14)
        record.response_status.message = result.reason
        if result.status is not None:
            pb.response_count += 1
            if result.status < 500:
                entry.executions += 1
        entry.save(pb)
        core.log_dispatch(queue=short_id(self.name), task=short_id(pb.name),
                          attempt=retries + 1, status=result.status or result.reason,
                          latency_ms=round(result.latency * 1000, 1))
        if entry.running:  # another attempt is on its way: it decides what comes next
            return
        if self._exhausted(pb, answered):
            self.end(pb.name)
            return
        delay = retry_delay(self._retry_config(pb), pb.dispatch_count - 1)
        if result.retry_after is not None:  # "considered": never sooner than it asks
            delay = max(delay, result.retry_after)
        entry.due = answered + delay
        set_timestamp(pb.schedule_time, entry.due)
        core.store.put_task(pb.name, self.name, entry.save(pb))
        self._push(entry)

    def _request(self, entry: TaskEntry, pb: Any, retries: int,
                 ) -> tuple[str, str, dict[str, str], bytes, float, Authorization | None]:
        """The HTTP request of an attempt of task ``pb``: method, URL, headers, body,
        deadline, token."""
        request = pb.http_request
        method, url = request.http_method, request.url
        headers = caller_headers(request.headers)
        auth = authorization_of(request)
        if self.pb.HasField("http_target"):
            url, method, headers, auth = apply_queue_target(
                self.pb.http_target, url, method, headers, auth)
        headers.update({
            "User-Agent": "Google-Cloud-Tasks",
            "X-CloudTasks-QueueName": short_id(self.name),
            "X-CloudTasks-TaskName": short_id(pb.name),
            "X-CloudTasks-TaskRetryCount": str(retries),
            "X-CloudTasks-TaskExecutionCount": str(entry.executions),
            "X-CloudTasks-TaskETA": f"{entry.due:.6f}",
        })
        if retries:
            last = pb.last_attempt
            status = last.response_status
            headers["X-CloudTasks-TaskRetryReason"] = status.message or "unknown"
            if last.HasField("response_time"):
                headers["X-CloudTasks-TaskPreviousResponse"] = str(_http_status(status))
        # A GET set by the queue drops the task's body, as the field says.
        body = request.body if method in BODY_METHODS else b""
        deadline = (from_duration(pb.dispatch_deadline) if pb.HasField("dispatch_deadline")
                    else DEFAULT_DISPATCH_DEADLINE)
        return HTTP_METHODS.get(method, "POST"), url, headers, body, deadline, auth

    def _retry_config(self, pb: Any) -> Any:
        """The retry config of task ``pb``: its own (``Task.retry_config``, "overrides the
        queue's"), field by field over the queue's, or the queue's."""
        if not pb.HasField("retry_config"):
            return self.pb.retry_config
        merged = tasks_v2.RetryConfig.pb()()
        merged.CopyFrom(self.pb.retry_config)
        merged.MergeFrom(pb.retry_config)
        return merged

    def _exhausted(self, pb: Any, now: float) -> bool:
        retry = self._retry_config(pb)
        by_attempts = retry.max_attempts != -1 and pb.dispatch_count >= retry.max_attempts
        limit = from_duration(retry.max_retry_duration)
        by_time = limit > 0 and now - from_timestamp(pb.first_attempt.dispatch_time) >= limit
        if retry.max_attempts != -1 and limit > 0:
            return by_attempts and by_time  # both limits must be reached (the service's rule)
        return by_attempts or by_time


# HTTP status <-> google.rpc.Code, as the service reports attempt statuses.
_HTTP_TO_RPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 499: 1, 500: 13, 501: 12,
                503: 14, 504: 4}
_RPC_TO_HTTP = {v: k for k, v in _HTTP_TO_RPC.items()}


def _rpc_code(status: int) -> int:
    if 200 <= status < 300:
        return 0
    return _HTTP_TO_RPC.get(status, 2 if status >= 500 else 9)


def _http_status(status: Any) -> int:
    words = str(status.message).split()
    if len(words) > 1 and words[0] == "HTTP" and words[1].isdigit():
        return int(words[1])
    return _RPC_TO_HTTP.get(int(status.code), 500)
