"""Bulk sends (``group(...).apply_async()``) through BatchCreateTasks.

Up to 100 tasks of one queue per call (and at most 3 MB), several calls in flight: threads on
the sync client, tasks on the async one. A batch whose call fails is sent again with the same
request id; entries the service reports failed are retried by the same policy as single sends
(:mod:`celery_gcp.transport.policy`). A service without BatchCreateTasks (some third-party
emulators) gets single CreateTask calls instead.

:class:`_Batch` is the I/O-free core of one batch (what to send next, what an answer means);
:func:`send_many` and :func:`asend_many` only make the calls and wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..exceptions import TransportError
from ..message import Message
from ..platform import MAX_BATCH, MAX_BATCH_BYTES
from .base import Receipt, SendOptions
from .policy import Attempts

if TYPE_CHECKING:
    from .cloudtasks import CloudTasksTransport

__all__ = ["asend_many", "send_many"]

RPC_TIMEOUT = 60.0


def send_many(transport: CloudTasksTransport, messages: Sequence[Message],
              options: SendOptions | None) -> list[Receipt | Exception]:
    """Send ``messages`` in batches, several calls at once; outcomes in message order."""
    from google.api_core import exceptions as gexc

    bulk = _Bulk(transport, messages, options)
    client = transport.client()

    def one(entries: list[tuple[int, Any]]) -> None:
        batch = _Batch(bulk, entries)
        while transport.batch and (request := batch.request()) is not None:
            try:
                operation = client.batch_create_tasks(request=request, retry=None,
                                                      timeout=RPC_TIMEOUT)
            except gexc.MethodNotImplemented:
                transport.batch = False
                break
            except gexc.GoogleAPICallError as exc:  # sent again with the same request id
                time.sleep(batch.answered(exc, again=True))
                continue
            try:
                operation.result(timeout=RPC_TIMEOUT)
            except gexc.GoogleAPICallError as exc:
                time.sleep(batch.answered(exc))
            else:
                time.sleep(batch.answered(None, operation.metadata.failed_requests))
        for index in batch.left():  # one at a time, where batches are not served
            bulk.single(index, transport.send)

    batches = bulk.batches()
    workers = min(len(batches), transport.concurrency)
    if workers <= 1:
        for entries in batches:
            one(entries)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="celery-gcp-send") as pool:
            for _ in pool.map(one, batches):
                pass
    return bulk.outcomes()


async def asend_many(transport: CloudTasksTransport, messages: Sequence[Message],
                     options: SendOptions | None) -> list[Receipt | Exception]:
    """Async :func:`send_many`, on the async client of the running event loop."""
    from google.api_core import exceptions as gexc

    bulk = _Bulk(transport, messages, options)
    client = transport.async_client()
    limit = asyncio.Semaphore(transport.concurrency)

    async def one(entries: list[tuple[int, Any]]) -> None:
        async with limit:
            batch = _Batch(bulk, entries)
            while transport.batch and (request := batch.request()) is not None:
                try:
                    operation = await client.batch_create_tasks(request=request, retry=None,
                                                                timeout=RPC_TIMEOUT)
                except gexc.MethodNotImplemented:
                    transport.batch = False
                    break
                except gexc.GoogleAPICallError as exc:
                    await asyncio.sleep(batch.answered(exc, again=True))
                    continue
                try:
                    await operation.result(timeout=RPC_TIMEOUT)
                except gexc.GoogleAPICallError as exc:
                    await asyncio.sleep(batch.answered(exc))
                else:
                    await asyncio.sleep(batch.answered(None, operation.metadata.failed_requests))
            for index in batch.left():
                await bulk.asingle(index, transport.asend)

    await asyncio.gather(*(one(entries) for entries in bulk.batches()))
    return bulk.outcomes()


class _Batch:
    """One batch of one queue: the request to send next, and what each answer means."""

    def __init__(self, bulk: _Bulk, entries: list[tuple[int, Any]]) -> None:
        self.bulk = bulk
        self.pending = entries
        self._request: Any = None

    def request(self) -> Any | None:
        """The BatchCreateTasksRequest to send now (the same one again after a failed call,
        so the service can tell a retry by its request id); ``None`` once nothing is left."""
        if not self.pending:
            return None
        if self._request is None:
            self._request = self.bulk.batch_request(self.pending)
        return self._request

    def answered(self, error: Exception | None, failed: Mapping[int, Any] | None = None, *,
                 again: bool = False) -> float:
        """Record an answer: the call's or its operation's error, or the entries the operation
        reports failed; returns the wait before the next call (0 when nothing is left).
        ``again``: the call itself failed, so the same request (and id) is sent again."""
        if not again:
            self._request = None  # a new request id for the entries sent again
        self.pending, delay = self.bulk.record_answer(self.pending, error, failed)
        return delay if self.pending else 0.0

    def left(self) -> list[int]:
        """The entries still unsent (the service does not serve batches)."""
        return [index for index, _ in self.pending]


class _Bulk:
    """One bulk send: its requests, batched per queue, and the outcome of each message."""

    def __init__(self, transport: CloudTasksTransport, messages: Sequence[Message],
                 options: SendOptions | None) -> None:
        self.messages = messages
        self.options = options
        self.results: list[Receipt | Exception | None] = [None] * len(messages)
        self.requests: list[Any] = [None] * len(messages)
        self.attempts = [Attempts(message, options) for message in messages]
        now = transport.now()
        for i, message in enumerate(messages):
            try:
                self.requests[i] = transport.create_request(message, now, options)
            except Exception as exc:  # reported in its slot; the others are still sent
                self.results[i] = exc

    def batches(self) -> list[list[tuple[int, Any]]]:
        """The requests to send, per queue, at most MAX_BATCH and MAX_BATCH_BYTES a batch."""
        by_queue: dict[str, list[list[tuple[int, Any]]]] = {}
        sizes: dict[str, int] = {}
        for i, request in enumerate(self.requests):
            if request is None:
                continue
            size = request.ByteSize()
            chunks = by_queue.setdefault(request.parent, [[]])
            if len(chunks[-1]) >= MAX_BATCH or (
                    chunks[-1] and sizes[request.parent] + size > MAX_BATCH_BYTES):
                chunks.append([])
                sizes[request.parent] = 0
            chunks[-1].append((i, request))
            sizes[request.parent] = sizes.get(request.parent, 0) + size
        return [chunk for chunks in by_queue.values() for chunk in chunks]

    @staticmethod
    def batch_request(pending: list[tuple[int, Any]]) -> Any:
        """A BatchCreateTasksRequest of ``pending``, with a fresh request id."""
        from google.cloud import tasks_v2

        from ..message import new_id

        request = tasks_v2.BatchCreateTasksRequest.pb()(
            parent=pending[0][1].parent, request_id=new_id())
        request.requests.extend(r for _, r in pending)
        return tasks_v2.BatchCreateTasksRequest.wrap(request)

    def record_answer(self, pending: list[tuple[int, Any]], error: Exception | None,
               failed: Mapping[int, Any] | None = None) -> tuple[list[tuple[int, Any]], float]:
        """Record what a batch call did: the entries to send again, and the wait before."""
        from google.api_core import exceptions as gexc

        again: list[tuple[int, Any]] = []
        delay = 0.0
        for position, (i, request) in enumerate(pending):
            exc = error
            if exc is None and failed and position in failed:
                status = failed[position]
                from_status: Any = gexc.from_grpc_status  # untyped in google-api-core
                exc = from_status(status.code, status.message)
            if exc is not None:
                try:
                    wait = self.attempts[i].failed(exc)
                except Exception as final:
                    self.results[i] = final
                    continue
                if wait is not None:
                    again.append((i, request))
                    delay = max(delay, wait)
                    continue
            self.results[i] = Receipt(task_id=self.messages[i].id, name=request.task.name)
        return again, delay

    def single(self, index: int, send: Any) -> None:
        """Send one message on its own (where batches are not served)."""
        try:
            self.results[index] = send(self.messages[index], self.options)
        except Exception as exc:
            self.results[index] = exc

    async def asingle(self, index: int, asend: Any) -> None:
        """Async :meth:`single`."""
        try:
            self.results[index] = await asend(self.messages[index], self.options)
        except Exception as exc:
            self.results[index] = exc

    def outcomes(self) -> list[Receipt | Exception]:
        """Each message's receipt or error, in message order."""
        return [r if r is not None else TransportError(f"task {m.task}[{m.id}] was not sent")
                for r, m in zip(self.results, self.messages, strict=True)]
