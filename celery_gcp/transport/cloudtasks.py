"""The Cloud Tasks transport: each Message becomes an HTTP task in its routed queue.

The Google client library is imported only when the first task is sent (cold start on Cloud
Run). Production uses Application Default Credentials; with ``CLOUD_TASKS_EMULATOR_HOST`` set,
the emulator is used instead.

The transport only does I/O: each message carries its whole
:class:`~celery_gcp.message.Destination` (resolved by :mod:`celery_gcp.sending`), so it reads
nothing of an app. What a task looks like::

    name      {queue path}/tasks/{celery id}[-x{replaced}][-r{retries}][-h{relay hop}]
    url       the destination's URL, called with its method
    headers   the Message's X-Celery-* headers (+ X-Celery-Relay on a relay hop)
    body      the Message's body
    schedule  the Message's ETA; beyond Cloud Tasks' 30-day horizon, a relay hop
    deadline  the destination's dispatch deadline (15 s..30 min)
    oidc      the destination's service account and audience

Bulk sends (``group(...).apply_async()``) are in :mod:`celery_gcp.transport.bulk`; the retry
policy of a failed create in :mod:`celery_gcp.transport.policy`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from .. import gcp
from ..exceptions import ImproperlyConfigured, MessageTooLargeError, TaskArgumentError
from ..message import REPLACED_NESTING, Message
from ..platform import HORIZON_SECONDS, MAX_TASK_BYTES, RELAY_HEADER
from .base import Receipt, SendOptions, Transport
from .policy import Attempts

__all__ = ["CloudTasksTransport", "task_id_for"]

# A Celery id that is a valid task id, leaving room for the retry and hop suffixes.
_VALID_ID = re.compile(r"^[A-Za-z0-9_-]{1,480}\Z")


def task_id_for(message: Message, hop: int | None = None) -> str:
    """The Cloud Tasks task id of a message: its Celery id where it fits, else a hash of it.

    A retry of task X is ``X-r{n}``; a relay hop is suffixed ``-h{schedule second}``; the
    task replacing X (``self.replace()``, which keeps X's id) is ``X-x{nesting}``.
    """
    base = message.id if _VALID_ID.match(message.id) else (
        "h" + hashlib.sha256(message.id.encode()).hexdigest()[:40])
    nesting = message.headers.get(REPLACED_NESTING) if message.headers else None
    if isinstance(nesting, int) and nesting > 0:
        base += f"-x{nesting}"
    if message.retries:
        base += f"-r{message.retries}"
    if hop is not None:
        base += f"-h{hop}"
    return base


class CloudTasksTransport(Transport):
    """Sends messages as Cloud Tasks HTTP tasks, sync or async, one or many at a time.

    ``client`` / ``async_client`` are Cloud Tasks clients to use instead of the ones made from
    the environment (``async_client`` may also be a function that makes one, called once).
    ``clock`` gives the current time in epoch seconds (for the 30-day horizon);
    ``concurrency`` bounds the bulk calls in flight.
    """

    def __init__(self, *, client: Any = None, async_client: Any = None,
                 clock: Callable[[], float] | None = None, concurrency: int = 16) -> None:
        self._client: Any = client
        self._given_async: Any = async_client
        self._async_clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._lock = threading.Lock()
        self._clock = clock or time.time
        self.concurrency = max(1, concurrency)
        self.batch = True  # False once the service answers BatchCreateTasks UNIMPLEMENTED

    # -- requests --------------------------------------------------------------------------

    def create_request(self, message: Message, now: float | None = None,
                       options: SendOptions | None = None) -> Any:
        """The CreateTaskRequest (raw protobuf) for ``message``, after the send options'
        ``prepare`` hook; checks the size limit."""
        destination = message.destination
        if destination is None:
            raise ImproperlyConfigured(
                f"message {message.task}[{message.id}] has no destination: send it through "
                "an app's sender (app.sender) or a route builder, which address it")
        types = _types()
        headers = message.http_headers()
        hop = None
        due = None
        if message.eta is not None:
            now = self._clock() if now is None else now
            due = message.eta.timestamp()
            if due - now > HORIZON_SECONDS:
                if not destination.relay:
                    raise TaskArgumentError(
                        f"{message.task}: a start {(due - now) / 86400:.1f} days ahead exceeds "
                        "Cloud Tasks' 30-day limit, and this route cannot relay a task across "
                        "it: send it later (e.g. from a scheduled job), or serve the route "
                        "with app.TaskRoute, whose routes relay")
                due = now + HORIZON_SECONDS
                hop = int(due)
                headers[RELAY_HEADER] = "1"
        parent = destination.queue_path
        request = types.request(parent=parent)
        task = request.task
        task.name = f"{parent}/tasks/{task_id_for(message, hop)}"
        http = task.http_request
        http.url = destination.url
        http.http_method = types.methods[destination.method]
        fields = http.headers
        for name, value in headers.items():  # faster than the map's update()
            fields[name] = value
        http.body = message.body
        if due is not None:
            task.schedule_time.FromNanoseconds(int(due * 1e9))
        if destination.deadline is not None:
            task.dispatch_deadline.FromNanoseconds(int(destination.deadline * 1e9))
        if destination.service_account:
            http.oidc_token.service_account_email = destination.service_account
            http.oidc_token.audience = destination.audience or destination.url
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

    def now(self) -> float:
        """The current time, in epoch seconds, by the transport's clock."""
        return self._clock()

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Create the task, retrying transient failures by the send options' policy."""
        request = self.create_request(message, options=options)
        wrapped = _types().wrap(request)  # a proto-plus view: the client would deep-copy a raw one
        client = self.client()
        extra = _call_options(options)
        attempts = None  # made on the first failure: most sends succeed at once
        while True:
            try:
                client.create_task(request=wrapped, retry=None, **extra)
            except _types().api_error as exc:
                attempts = attempts or Attempts(message, options)
                delay = attempts.failed(exc)
                if delay is not None:
                    time.sleep(delay)
                    continue
            return Receipt(task_id=message.id, name=request.task.name)

    async def asend(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Async :meth:`send` on an async client of the running event loop."""
        request = self.create_request(message, options=options)
        wrapped = _types().wrap(request)
        client = self.async_client()
        extra = _call_options(options)
        attempts = None
        while True:
            try:
                await client.create_task(request=wrapped, retry=None, **extra)
            except _types().api_error as exc:
                attempts = attempts or Attempts(message, options)
                delay = attempts.failed(exc)
                if delay is not None:
                    await asyncio.sleep(delay)
                    continue
            return Receipt(task_id=message.id, name=request.task.name)

    def send_many(self, messages: Sequence[Message],
                  options: SendOptions | None = None) -> list[Receipt | Exception]:
        """Send many messages with BatchCreateTasks, several calls at once (threads on the
        sync client); results and errors in message order."""
        from .bulk import send_many

        return send_many(self, messages, options)

    async def asend_many(self, messages: Sequence[Message],
                         options: SendOptions | None = None) -> list[Receipt | Exception]:
        """Async :meth:`send_many`, on the async client of the running event loop."""
        from .bulk import asend_many

        return await asend_many(self, messages, options)

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
            if gcp.is_client_factory(given):  # made once; a mock client is callable too
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
