"""The Cloud Tasks transport: each Message becomes an HTTP task in its routed queue.

The Google client library is imported only when the first task is sent (cold start on Cloud
Run). Production uses Application Default Credentials; with ``CLOUD_TASKS_EMULATOR_HOST`` set,
the emulator is used instead.

What a task looks like::

    name      {queue path}/tasks/{celery id}[-r{retries}][-h{relay hop}]
    url       {task_base_url}{task_endpoint_prefix}/{task name}
    headers   the Message's X-Celery-* headers (+ X-Celery-Relay on a relay hop)
    body      the Message's JSON body
    schedule  the Message's ETA; beyond Cloud Tasks' 30-day horizon, a relay hop
    deadline  the task's time_limit (15 s..30 min)
    oidc      gcp_service_account, audience task_oidc_audience or the url

A message for a FastAPI route (one with an :class:`~celery_gcp.message.HttpTarget`) goes to the
target's URL with its method and headers; a transport made without an app (the route
builders of :mod:`celery_gcp.fastapi`) sends only those, each naming its queue path.

Bulk sends (``group(...).apply_async()``) use BatchCreateTasks: up to 100 tasks of one queue
per call, several calls in flight. A service without it (some third-party emulators) gets
single CreateTask calls instead.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import gcp
from ..exceptions import (
    DuplicateTaskError,
    ImproperlyConfigured,
    MessageTooLargeError,
    TaskArgumentError,
    TransportError,
)
from ..message import Message
from .base import Receipt, SendOptions, Transport

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["RELAY_HEADER", "CloudTasksTransport", "task_id_for"]

RELAY_HEADER = "X-Celery-Relay"
MAX_TASK_BYTES = 1024 * 1024
MAX_BATCH = 100  # BatchCreateTasks' limit
# Below gRPC's default 4 MB message limit, which a batch of large tasks would pass.
MAX_BATCH_BYTES = 3 * 1024 * 1024
RPC_TIMEOUT = 60.0
# Cloud Tasks refuses a schedule_time more than 30 days ahead; hop a little earlier.
HORIZON_SECONDS = 30 * 86400 - 3600
_VALID_ID = re.compile(r"^[A-Za-z0-9_-]{1,480}$")
# Celery's default publish retry policy.
DEFAULT_RETRY_POLICY: Mapping[str, float] = {
    "max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def task_id_for(message: Message, hop: int | None = None) -> str:
    """The Cloud Tasks task id of a message: its Celery id where it fits, else a hash of it.

    A retry of task X is ``X-r{n}``; a relay hop is suffixed ``-h{schedule second}``.
    """
    base = message.id if _VALID_ID.match(message.id) else (
        "h" + hashlib.sha256(message.id.encode()).hexdigest()[:40])
    if message.retries:
        base += f"-r{message.retries}"
    if hop is not None:
        base += f"-h{hop}"
    return base


class CloudTasksTransport(Transport):
    """Sends messages as Cloud Tasks HTTP tasks, sync or async, one or many at a time.

    ``client`` / ``async_client`` are Cloud Tasks clients to use instead of the ones made from
    the environment (``async_client`` may also be a function that makes one, called once).
    """

    def __init__(self, app: Celery | None, *, client: Any = None,
                 async_client: Any = None) -> None:
        self.app = app
        self._client: Any = client
        self._given_async: Any = async_client
        self._async_clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._lock = threading.Lock()
        # Per-queue paths and per-task (url, deadline), valid while the settings and the task
        # registry stay as they were.
        self._cache_key: tuple[int, int] = (-1, -1)
        self._paths: dict[str | None, str] = {}
        self._targets: dict[str, tuple[str, float | None]] = {}
        self._route_deadlines: dict[str, float | None] = {}
        self._batch = True  # False once the service answers BatchCreateTasks UNIMPLEMENTED

    # -- requests --------------------------------------------------------------------------

    def queue_path(self, queue: str | None) -> str:
        """The full name of the Cloud Tasks queue for a Celery queue name."""
        if self.app is None:
            raise ImproperlyConfigured("a transport without an app sends only messages whose "
                                       "target names their queue path")
        conf = self.app.conf
        queue_id = self.app.queue_router.queue_id(queue or conf.task_default_queue)
        return f"projects/{gcp.project(self.app)}/locations/{conf.gcp_location}/queues/{queue_id}"

    def task_url(self, task: str) -> str:
        """The URL Cloud Tasks calls for task ``task``."""
        assert self.app is not None
        return gcp.endpoint_url(self.app, task)

    def _now(self) -> float:
        return time.time() if self.app is None else self.app.now().timestamp()

    def create_request(self, message: Message, now: float | None = None,
                       options: SendOptions | None = None) -> Any:
        """The CreateTaskRequest (raw protobuf) for ``message``, after the send options'
        ``prepare`` hook; checks the size limit."""
        types = _types()
        now = self._now() if now is None else now
        parent, url, deadline = self._target(message)
        headers = message.http_headers()
        target = message.target
        hop = None
        if message.eta is not None:
            due = message.eta.timestamp()
            if due - now > HORIZON_SECONDS:
                if target is not None and not target.relay:
                    raise TaskArgumentError(
                        f"{message.task}: a start {(due - now) / 86400:.1f} days ahead exceeds "
                        "Cloud Tasks' 30-day limit, and this route cannot relay a task across "
                        "it: send it later (e.g. from a scheduled job), or serve the route "
                        "with app.TaskRoute, whose routes relay")
                due = now + HORIZON_SECONDS
                hop = int(due)
                headers[RELAY_HEADER] = "1"
        else:
            due = None
        request = types.request(parent=parent)
        task = request.task
        task.name = f"{parent}/tasks/{task_id_for(message, hop)}"
        http = task.http_request
        http.url = url
        http.http_method = types.post if target is None else types.methods[target.method]
        fields = http.headers
        for name, value in headers.items():  # faster than the map's update()
            fields[name] = value
        http.body = message.body
        if due is not None:
            task.schedule_time.FromNanoseconds(int(due * 1e9))
        if deadline is not None:
            task.dispatch_deadline.FromNanoseconds(int(deadline * 1e9))
        conf = self.app.conf if self.app is not None else None
        if conf is not None and conf.gcp_service_account:
            http.oidc_token.service_account_email = conf.gcp_service_account
            # The URL as the worker routes it: path decoded, no query.
            http.oidc_token.audience = conf.task_oidc_audience or (
                url if target is None else gcp.routed_path(url))
        if options is not None and options.prepare is not None:
            prepared = options.prepare(types.wrap(request))
            request = type(prepared).pb(prepared) if hasattr(type(prepared), "pb") else prepared
            task = request.task
        size = task.ByteSize()
        if size > MAX_TASK_BYTES:
            raise MessageTooLargeError(
                f"task {message.task}[{message.id}] is {size:,} bytes, over Cloud Tasks' "
                f"{MAX_TASK_BYTES:,}-byte limit: send an id and look the data up in the task"
            )
        return request

    def _target(self, message: Message) -> tuple[str, str, float | None]:
        """The queue path, URL and dispatch deadline of ``message``, cached."""
        given = message.target
        if self.app is None:  # only routes' messages, each naming its queue
            if given is None or given.queue_path is None:
                raise ImproperlyConfigured("a transport without an app sends only messages "
                                           "whose target names their queue path")
            return given.queue_path, given.url, None
        key = (self.app.conf.version, len(self.app.tasks))
        if key != self._cache_key:
            self._paths, self._targets, self._cache_key = {}, {}, key
            self._route_deadlines = {}
        parent = given.queue_path if given is not None else None
        if parent is None:
            parent = self._paths.get(message.queue)
            if parent is None:
                parent = self._paths[message.queue] = self.queue_path(message.queue)
        if given is not None:  # a route's URL comes with each message
            deadline = self._route_deadlines.get(message.task, False)
            if deadline is False:
                deadline = self._route_deadlines[message.task] = self._deadline(message.task)
            return parent, given.url, deadline
        target = self._targets.get(message.task)
        if target is None:
            target = (self.task_url(message.task), self._deadline(message.task))
            self._targets[message.task] = target
        return parent, target[0], target[1]

    def _deadline(self, task_name: str) -> float | None:
        assert self.app is not None
        task = self.app.tasks.get(task_name)
        limit = getattr(task, "time_limit", None) or self.app.conf.task_time_limit
        return float(limit) if limit else None

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Create the task, retrying transient failures by the send options' policy."""
        request = self.create_request(message, options=options)
        wrapped = _types().wrap(request)  # a proto-plus view: the client would deep-copy a raw one
        client = self.client()
        extra = _call_options(options)
        attempt = 0
        while True:
            try:
                client.create_task(request=wrapped, retry=None, **extra)
                break
            except _types().api_error as exc:
                delay = self._after_failure(message, attempt, options, exc)
                if delay is None:
                    break
                attempt += 1
                time.sleep(delay)
        return Receipt(task_id=message.id, name=request.task.name)

    async def asend(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Async :meth:`send` on an async client of the running event loop."""
        request = self.create_request(message, options=options)
        wrapped = _types().wrap(request)
        client = self.async_client()
        extra = _call_options(options)
        attempt = 0
        while True:
            try:
                await client.create_task(request=wrapped, retry=None, **extra)
                break
            except _types().api_error as exc:
                delay = self._after_failure(message, attempt, options, exc)
                if delay is None:
                    break
                attempt += 1
                await asyncio.sleep(delay)
        return Receipt(task_id=message.id, name=request.task.name)

    @staticmethod
    def _after_failure(message: Message, attempt: int, options: SendOptions | None,
                       exc: Exception) -> float | None:
        """What a failed CreateTask means: ``None`` if the task exists after all, else the
        wait before trying again; raises when the send is over."""
        from google.api_core import exceptions as gexc

        if isinstance(exc, gexc.AlreadyExists):
            # After a transient failure, our own earlier attempt took effect; for a retry or
            # a relay hop, the same name means this very step was already sent.
            if attempt > 0 or message.retries > 0 or (
                    options is not None and options.on_duplicate == "ignore"):
                return None
            raise DuplicateTaskError(message.id) from None
        if isinstance(exc, gexc.ServiceUnavailable | gexc.DeadlineExceeded
                      | gexc.InternalServerError):
            return _next_delay(_policy(options), attempt, exc)
        raise _transport_error(message, exc) from exc

    # -- bulk sending ----------------------------------------------------------------------

    def send_many(self, messages: Sequence[Message],
                  options: SendOptions | None = None) -> list[Receipt | Exception]:
        """Send many messages with BatchCreateTasks, several calls at once (threads on the
        sync client); results and errors in message order."""
        bulk = _Bulk(self, messages, options)
        batches = bulk.batches()
        workers = min(len(batches), self._send_concurrency())
        if workers <= 1:
            for batch in batches:
                self._send_batch(bulk, batch)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="celery-gcp-send") as pool:
                for _ in pool.map(lambda batch: self._send_batch(bulk, batch), batches):
                    pass
        return bulk.outcomes()

    async def asend_many(self, messages: Sequence[Message],
                         options: SendOptions | None = None) -> list[Receipt | Exception]:
        """Async :meth:`send_many`, on the async client of the running event loop."""
        bulk = _Bulk(self, messages, options)
        limit = asyncio.Semaphore(self._send_concurrency())

        async def one(batch: list[tuple[int, Any]]) -> None:
            async with limit:
                await self._asend_batch(bulk, batch)

        await asyncio.gather(*(one(batch) for batch in bulk.batches()))
        return bulk.outcomes()

    def _send_batch(self, bulk: _Bulk, batch: list[tuple[int, Any]]) -> None:
        from google.api_core import exceptions as gexc

        client = self.client()
        pending, attempt, request = batch, 0, None
        while pending and self._batch:
            request = request or bulk.batch_request(pending)
            try:
                operation = client.batch_create_tasks(request=request, retry=None,
                                                      timeout=RPC_TIMEOUT)
            except gexc.MethodNotImplemented:
                self._batch = False
                break
            except gexc.GoogleAPICallError as exc:  # retried with the same request_id
                pending, delay = bulk.settle(pending, attempt, exc)
            else:
                request = None
                pending, delay = bulk.settle(pending, attempt, *_finished(operation))
            if pending:
                attempt += 1
                time.sleep(delay)
        for index, _ in pending:  # one at a time, where batches are not served
            bulk.single(index, self.send)

    async def _asend_batch(self, bulk: _Bulk, batch: list[tuple[int, Any]]) -> None:
        from google.api_core import exceptions as gexc

        client = self.async_client()
        pending, attempt, request = batch, 0, None
        while pending and self._batch:
            request = request or bulk.batch_request(pending)
            try:
                operation = await client.batch_create_tasks(request=request, retry=None,
                                                            timeout=RPC_TIMEOUT)
            except gexc.MethodNotImplemented:
                self._batch = False
                break
            except gexc.GoogleAPICallError as exc:
                pending, delay = bulk.settle(pending, attempt, exc)
            else:
                request = None
                try:
                    await operation.result(timeout=RPC_TIMEOUT)
                except gexc.GoogleAPICallError as exc:
                    pending, delay = bulk.settle(pending, attempt, exc)
                else:
                    pending, delay = bulk.settle(pending, attempt, None,
                                                 operation.metadata.failed_requests)
            if pending:
                attempt += 1
                await asyncio.sleep(delay)
        for index, _ in pending:
            await bulk.asingle(index, self.asend)

    def _send_concurrency(self) -> int:
        conf = None if self.app is None else self.app.conf.get("task_send_concurrency")
        return max(1, int(conf or 16))

    # -- task state ------------------------------------------------------------------------

    def get_queue(self, path: str) -> Any | None:
        """The queue at ``path``, or ``None`` if it does not exist."""
        from google.api_core import exceptions as gexc

        try:
            return self.client().get_queue(name=path)
        except gexc.NotFound:
            return None

    def task_state(self, name: str) -> str | None:
        """``PENDING`` for a task not yet tried, ``RETRY`` for one whose attempts failed so
        far; ``None`` once Cloud Tasks no longer has it (done, or never existed)."""
        from google.api_core import exceptions as gexc

        from .. import states

        try:
            task = self.client().get_task(name=name)
        except gexc.NotFound:
            return None
        return states.RETRY if task.dispatch_count else states.PENDING

    def revoke(self, name: str) -> bool:
        """Delete a task not yet run; ``False`` if it no longer exists."""
        from google.api_core import exceptions as gexc

        try:
            self.client().delete_task(name=name)
        except gexc.NotFound:
            return False
        return True

    # -- clients ---------------------------------------------------------------------------

    def client(self) -> Any:
        """The sync client (created once, thread-safe)."""
        with self._lock:
            if self._client is None:
                self._client = gcp.tasks_client(asynchronous=False)
            return self._client

    def async_client(self) -> Any:
        """The async client of the running event loop (created in that loop), or the one
        given (made by the given function on first use)."""
        given = self._given_async
        if given is not None:
            if callable(given):  # a factory: clients are not callable
                given = self._given_async = given()
            return given
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = gcp.tasks_client(asynchronous=True)
            self._async_clients = {
                lp: c for lp, c in self._async_clients.items() if not lp.is_closed()}
            self._async_clients[loop] = client
        return client

    def close(self) -> None:
        """Close the sync client's channel."""
        if self._client is not None:
            self._client.transport.close()
            self._client = None


class _Types(NamedTuple):
    request: Any  # the raw CreateTaskRequest class
    post: int
    methods: Mapping[str, int]
    wrap: Any  # raw request -> proto-plus view
    api_error: type[Exception]


@functools.cache
def _types() -> _Types:
    """The client library's types, imported on the first send (not at cold start)."""
    from google.api_core import exceptions
    from google.cloud import tasks_v2

    methods = {m.name: m.value for m in list(tasks_v2.HttpMethod) if m.value}
    return _Types(tasks_v2.CreateTaskRequest.pb(), tasks_v2.HttpMethod.POST, methods,
                  tasks_v2.CreateTaskRequest.wrap, exceptions.GoogleAPICallError)


def _call_options(options: SendOptions | None) -> dict[str, Any]:
    """Keyword arguments of the create call: a timeout only when one was given."""
    if options is not None and options.timeout is not None:
        return {"timeout": options.timeout}
    return {}


def _policy(options: SendOptions | None) -> Mapping[str, float] | None:
    if options is not None and not options.retry:
        return None
    if options is not None and options.retry_policy:
        return {**DEFAULT_RETRY_POLICY, **options.retry_policy}
    return DEFAULT_RETRY_POLICY


def _next_delay(policy: Mapping[str, float] | None, attempt: int, exc: Exception) -> float:
    if policy is None or attempt >= int(policy["max_retries"]):
        raise TransportError(f"Cloud Tasks did not take the task: {exc}") from exc
    delay = min(float(policy["interval_max"]),
                float(policy["interval_start"]) + attempt * float(policy["interval_step"]))
    return delay * (0.5 + random.random())  # jitter keeps many senders from lock-stepping


def _transport_error(message: Message, exc: Exception) -> TransportError:
    return TransportError(f"Cloud Tasks refused task {message.task}[{message.id}]: {exc}")


def _finished(operation: Any) -> tuple[Exception | None, Any]:
    """Wait for a batch operation: (its error, or None and its failed requests)."""
    from google.api_core import exceptions as gexc

    try:
        operation.result(timeout=RPC_TIMEOUT)
    except gexc.GoogleAPICallError as exc:
        return exc, None
    return None, operation.metadata.failed_requests


class _Bulk:
    """One bulk send: its requests, batched per queue, and the outcome of each message."""

    def __init__(self, transport: CloudTasksTransport, messages: Sequence[Message],
                 options: SendOptions | None) -> None:
        self.messages = messages
        self.options = options
        self.results: list[Receipt | Exception | None] = [None] * len(messages)
        self.requests: list[Any] = [None] * len(messages)
        now = transport._now()
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

        from ..calling import new_id

        request = tasks_v2.BatchCreateTasksRequest.pb()(
            parent=pending[0][1].parent, request_id=new_id())
        request.requests.extend(r for _, r in pending)
        return tasks_v2.BatchCreateTasksRequest.wrap(request)

    def settle(self, pending: list[tuple[int, Any]], attempt: int, error: Exception | None,
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
                    wait = CloudTasksTransport._after_failure(
                        self.messages[i], attempt, self.options, exc)
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
