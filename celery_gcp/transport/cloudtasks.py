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
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import (
    DuplicateTaskError,
    ImproperlyConfigured,
    MessageTooLargeError,
    TransportError,
)
from ..message import Message
from .base import Receipt, SendOptions, Transport

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["RELAY_HEADER", "CloudTasksTransport", "task_id_for"]

EMULATOR_VARIABLE = "CLOUD_TASKS_EMULATOR_HOST"
RELAY_HEADER = "X-Celery-Relay"
MAX_TASK_BYTES = 1024 * 1024
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
    """Sends messages as Cloud Tasks HTTP tasks, sync or async, one or many at a time."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._client: Any = None
        self._async_clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._lock = threading.Lock()

    # -- requests --------------------------------------------------------------------------

    def queue_path(self, queue: str | None) -> str:
        """The full name of the Cloud Tasks queue for a Celery queue name."""
        conf = self.app.conf
        queue_id = self.app.queue_router.queue_id(queue or conf.task_default_queue)
        return f"projects/{self._project()}/locations/{conf.gcp_location}/queues/{queue_id}"

    def task_url(self, task: str) -> str:
        """The URL Cloud Tasks calls for task ``task``."""
        base = self.app.conf.task_base_url
        if not base:
            raise ImproperlyConfigured(
                "task_base_url is not set: set it (or CELERY_GCP_TASK_BASE_URL) to the URL of "
                "the service that runs your tasks, e.g. https://worker-abc-uc.a.run.app"
            )
        prefix = self.app.conf.task_endpoint_prefix.rstrip("/")
        return f"{base.rstrip('/')}{prefix}/{task}"

    def create_request(self, message: Message, now: float | None = None) -> Any:
        """The CreateTaskRequest (raw protobuf) for ``message``; checks the size limit."""
        from google.cloud import tasks_v2

        now = self.app.now().timestamp() if now is None else now
        parent = self.queue_path(message.queue)
        url = self.task_url(message.task)
        headers = message.http_headers()
        hop = None
        if message.eta is not None:
            due = message.eta.timestamp()
            if due - now > HORIZON_SECONDS:
                due = now + HORIZON_SECONDS
                hop = int(due)
                headers[RELAY_HEADER] = "1"
        else:
            due = None
        request = tasks_v2.CreateTaskRequest.pb()(parent=parent)
        task = request.task
        task.name = f"{parent}/tasks/{task_id_for(message, hop)}"
        http = task.http_request
        http.url = url
        http.http_method = tasks_v2.HttpMethod.POST
        http.headers.update(headers)
        http.body = message.body
        if due is not None:
            task.schedule_time.FromNanoseconds(int(due * 1e9))
        deadline = self._deadline(message.task)
        if deadline is not None:
            task.dispatch_deadline.FromNanoseconds(int(deadline * 1e9))
        account = self.app.conf.gcp_service_account
        if account:
            http.oidc_token.service_account_email = account
            http.oidc_token.audience = self.app.conf.task_oidc_audience or url
        size = task.ByteSize()
        if size > MAX_TASK_BYTES:
            raise MessageTooLargeError(
                f"task {message.task}[{message.id}] is {size:,} bytes, over Cloud Tasks' "
                f"{MAX_TASK_BYTES:,}-byte limit: send an id and look the data up in the task"
            )
        return request

    def _deadline(self, task_name: str) -> float | None:
        task = self.app.tasks.get(task_name)
        limit = getattr(task, "time_limit", None) or self.app.conf.task_time_limit
        return float(limit) if limit else None

    def _project(self) -> str:
        project = self.app.conf.gcp_project
        if project:
            return str(project)
        if os.environ.get(EMULATOR_VARIABLE):
            return "local"
        raise ImproperlyConfigured(
            "no Google Cloud project: set gcp_project (or GOOGLE_CLOUD_PROJECT), or set "
            f"{EMULATOR_VARIABLE}=HOST:PORT to use the emulator"
        )

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Create the task, retrying transient failures by the send options' policy."""
        from google.api_core import exceptions as gexc

        request = self.create_request(message)
        wrapped = _wrap(request)  # a proto-plus view: the client would deep-copy a raw one
        client = self.client()
        attempt = 0
        while True:
            try:
                client.create_task(request=wrapped, retry=None)
                break
            except gexc.GoogleAPICallError as exc:
                delay = self._after_failure(message, attempt, options, exc)
                if delay is None:
                    break
                attempt += 1
                time.sleep(delay)
        return Receipt(task_id=message.id, name=request.task.name)

    async def asend(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Async :meth:`send` on an async client of the running event loop."""
        from google.api_core import exceptions as gexc

        request = self.create_request(message)
        wrapped = _wrap(request)
        client = self.async_client()
        attempt = 0
        while True:
            try:
                await client.create_task(request=wrapped, retry=None)
                break
            except gexc.GoogleAPICallError as exc:
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

    async def asend_many(self, messages: Sequence[Message],
                         options: SendOptions | None = None) -> list[Receipt | Exception]:
        """Send many messages concurrently (bounded); results and errors in message order."""
        limit = asyncio.Semaphore(int(self.app.conf.get("task_send_concurrency") or 64))

        async def one(message: Message) -> Receipt | Exception:
            async with limit:
                try:
                    return await self.asend(message, options)
                except Exception as exc:
                    return exc

        return list(await asyncio.gather(*(one(m) for m in messages)))

    def send_many(self, messages: Sequence[Message],
                  options: SendOptions | None = None) -> list[Receipt | Exception]:
        """Send many messages concurrently on an async client in a private event loop."""

        async def bulk() -> list[Receipt | Exception]:
            try:
                return await self.asend_many(messages, options)
            finally:  # the loop ends here: so must its client's channel
                client = self._async_clients.pop(asyncio.get_running_loop(), None)
                if client is not None:
                    await client.transport.close()

        results: list[Receipt | Exception] = _run_async(bulk())
        return results

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
                self._client = _make_client(asynchronous=False)
            return self._client

    def async_client(self) -> Any:
        """The async client of the running event loop (created in that loop)."""
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = _make_client(asynchronous=True)
            self._async_clients = {
                lp: c for lp, c in self._async_clients.items() if not lp.is_closed()}
            self._async_clients[loop] = client
        return client

    def close(self) -> None:
        """Close the sync client's channel."""
        if self._client is not None:
            self._client.transport.close()
            self._client = None


def _wrap(request: Any) -> Any:
    from google.cloud import tasks_v2

    return tasks_v2.CreateTaskRequest.wrap(request)


def _make_client(asynchronous: bool) -> Any:
    emulator = os.environ.get(EMULATOR_VARIABLE)
    if emulator:
        from ..emulator import clients

        return clients.async_tasks_client(emulator) if asynchronous else (
            clients.tasks_client(emulator))
    from google.auth import exceptions as auth_exc
    from google.cloud import tasks_v2

    try:
        return tasks_v2.CloudTasksAsyncClient() if asynchronous else tasks_v2.CloudTasksClient()
    except auth_exc.DefaultCredentialsError as exc:
        raise TransportError(
            "no Google Cloud credentials: run `gcloud auth application-default login` on a "
            "workstation, give the service a service account on Cloud Run, or set "
            f"{EMULATOR_VARIABLE}=HOST:PORT to use the emulator ({exc})"
        ) from exc


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


def _run_async(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        box["value"] = asyncio.run(coro)

    thread = threading.Thread(target=target, name="celery-gcp-send-many")
    thread.start()
    thread.join()
    return box["value"]

