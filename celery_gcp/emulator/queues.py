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
from collections.abc import Mapping
from typing import Any

import grpc
from google.cloud import tasks_v2

from . import names
from .core import Core, set_timestamp
from .dispatch import Attempt
from .names import short_id
from .outgoing import task_attempt
from .queue_config import retries_exhausted, retry_config_of, retry_delay
from .rpc import RpcError
from .statuses import rpc_code

__all__ = ["QueueRunner", "TaskEntry", "find_queue"]

TaskPb: Any = tasks_v2.Task.pb()
# A plain int: the raw protobuf field it is compared with is one, and proto-plus's
# Enum.__eq__ is Python code on the dispatch loop's every turn.
_PAUSED = int(tasks_v2.Queue.State.PAUSED)
_seq = itertools.count()


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
                method, url, headers, body, deadline, auth = task_attempt(
                    self.pb, pb, retries=retries, executions=entry.executions, due=entry.due)
            except Exception as exc:  # the emulator's own failure: a failed attempt all the same
                result = Attempt(None, f"INTERNAL: {type(exc).__name__}: {exc}", 0.0)
            else:
                result = await core.sender.send(method, url, headers, body, deadline, auth)
        finally:
            entry.running -= 1
        if entry.ended:  # deleted or purged while in flight, or done by another attempt
            return
        core.log_dispatch(queue=short_id(self.name), task=short_id(entry.name),
                          attempt=retries + 1, status=result.status or result.reason,
                          latency_ms=round(result.latency * 1000, 1))
        if result.succeeded:  # the task is deleted: nothing to record on it
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
            record.response_status.code = rpc_code(result.status)
        else:
            record.response_status.code = (4 if "DEADLINE" in result.reason
                                           else 13 if "INTERNAL" in result.reason else 14)
        record.response_status.message = result.reason
        if result.status is not None:
            pb.response_count += 1
            if result.status < 500:
                entry.executions += 1
        entry.save(pb)
        if entry.running:  # another attempt is on its way: it decides what comes next
            return
        if retries_exhausted(retry_config_of(self.pb, pb), pb, answered):
            self.end(pb.name)
            return
        delay = retry_delay(retry_config_of(self.pb, pb), pb.dispatch_count - 1)
        if result.retry_after is not None:  # "considered": never sooner than it asks
            delay = max(delay, result.retry_after)
        entry.due = answered + delay
        set_timestamp(pb.schedule_time, entry.due)
        core.store.put_task(pb.name, self.name, entry.save(pb))
        self._push(entry)


def find_queue(queues: Mapping[str, QueueRunner], name: str) -> QueueRunner:
    """The queue named ``name`` (a valid queue name), or NOT_FOUND as the service answers."""
    names.queue_name(name)
    runner = queues.get(name)
    if runner is None:
        raise RpcError(grpc.StatusCode.NOT_FOUND, f"queue {name} does not exist")
    return runner
