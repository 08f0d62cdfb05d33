"""Routes whose endpoints send themselves as Cloud Tasks: ``.delay()`` and ``.options()``.

Example::

    DelayedRoute = DelayedRouteBuilder(
        queue_path=queue_path(project="p", location="us-central1", queue="emails"),
        base_url="https://api.example.com",
    )
    router = APIRouter(route_class=DelayedRoute, prefix="/tasks")

    @router.post("/welcome/{user_id}")
    def welcome(user_id: int, lang: str = "en") -> None: ...

    welcome.delay(user_id=7)                          # POST /tasks/welcome/7, now
    welcome.options(countdown=60).delay(7, lang="fr")  # in a minute

Each call builds its :class:`~celery_gcp.message.Message` with the one message builder of
:mod:`celery_gcp.sending` (so it gets parent and root ids inside a running task, like any task)
with the route's request as its target and the builder's queue and base URL as its destination,
and sends it through the Cloud Tasks transport, with its retries of transient errors and its
duplicate handling. Nothing touches the network before the first ``.delay()``: the queue
is created then (``auto_create_queue``), once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypedDict, TypeVar, overload

from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import Unpack

from ..exceptions import MessageDecodeError
from ..gcp import is_client_factory
from ..layers import Layers
from ..message import Destination, HttpTarget, Message
from ..sending import asend, compose, send
from ..signals import SignalLayer
from ..transport import Receipt, SendOptions
from ..transport.cloudtasks import CloudTasksTransport
from ..worker.delivery import expired, skip_expired
from .builtroute import (
    BuiltRoute,
    callback_url,
    check_options,
    pick_base_url,
    unalias_base_url,
)
from .clients import check_client, check_queue_path, ensure_queue, ensure_queue_async, make_client
from .hooks import DelayedTaskHook

__all__ = [
    "AsyncDelayOptions",
    "AsyncDelayedRouteBuilder",
    "AsyncDelayer",
    "DelayOptions",
    "DelayedRouteBuilder",
    "Delayer",
    "TaskDefaultOptions",
    "task_default_options",
]

if TYPE_CHECKING:
    from google.cloud import tasks_v2

F = TypeVar("F", bound=Callable[..., Any])
#: What a ``DelayedRouteBuilder`` takes as ``client``: a client, or a function that makes one.
SyncTasksClient: TypeAlias = "tasks_v2.CloudTasksClient | Callable[[], tasks_v2.CloudTasksClient]"
#: What an ``AsyncDelayedRouteBuilder`` takes as ``client``.
AsyncTasksClient: TypeAlias = ("tasks_v2.CloudTasksAsyncClient | "
                    "Callable[[], tasks_v2.CloudTasksAsyncClient]")
#: The layers around the route builders' sends (they belong to no app): Celery's signals.
LAYERS = Layers([SignalLayer()])


class TaskDefaultOptions(TypedDict, total=False):
    """What ``.options()`` and ``task_default_options`` take besides ``client`` (each
    overrides the builder's setting for those calls)."""

    countdown: float
    expires: float | datetime
    task_id: str
    task_create_timeout: float
    callback_base_url: str
    base_url: str
    queue_path: str
    pre_create_hook: DelayedTaskHook


class DelayOptions(TaskDefaultOptions, total=False):
    """What ``.options()`` of a route of ``DelayedRouteBuilder`` takes."""

    client: SyncTasksClient


class AsyncDelayOptions(TaskDefaultOptions, total=False):
    """What ``.options()`` of a route of ``AsyncDelayedRouteBuilder`` takes."""

    client: AsyncTasksClient


_KNOWN = DelayOptions.__required_keys__ | DelayOptions.__optional_keys__
_DEFAULTS = "_delay_options"


@overload
def task_default_options(**options: Unpack[DelayOptions]) -> Callable[[F], F]: ...


@overload
def task_default_options(**options: Unpack[AsyncDelayOptions]) -> Callable[[F], F]: ...


def task_default_options(**options: Any) -> Callable[[F], F]:
    """Default ``.options()`` of one endpoint (put it below the route decorator)::

        @router.post("/report")
        @task_default_options(countdown=30)
        def report() -> None: ...

    Checked by type checkers as ``.options()`` is (a ``client`` of either kind), and when
    called (unknown options raise ``TypeError``, bad values ``ValueError``).
    """
    check_options("DelayOptions", options, _KNOWN)

    def decorate(fn: F) -> F:
        setattr(fn, _DEFAULTS, dict(options))
        return fn

    return decorate


class _Sender:
    """What one builder was given, and the transport per client it sends with."""

    def __init__(self, *, asynchronous: bool, options: dict[str, Any],
                 auto_create_queue: bool) -> None:
        self.asynchronous = asynchronous
        self.options = options
        self.auto_create_queue = auto_create_queue
        self._transports: dict[int, CloudTasksTransport] = {}
        #: (transport, queue path) pairs whose queue was made sure of.
        self.ready: set[tuple[int, str]] = set()
        self._lock = threading.Lock()

    def transport(self, client: Any) -> CloudTasksTransport:
        """The transport sending with ``client`` (checked: a client of the other kind raises
        ``TypeError``); a sync client's factory is called now, an async one's in the event
        loop of the first send."""
        with self._lock:
            transport = self._transports.get(id(client))
            if transport is None:
                if not self.asynchronous:
                    made = make_client(client, service="tasks", asynchronous=False)
                    transport = CloudTasksTransport(client=made)
                elif is_client_factory(client):
                    transport = CloudTasksTransport(async_client=functools.partial(
                        make_client, client, service="tasks", asynchronous=True))
                else:
                    check_client(client, service="tasks", asynchronous=True)
                    transport = CloudTasksTransport(async_client=client)
                self._transports[id(client)] = transport
            return transport


class Delayer:
    """Sends one route's tasks with one set of options (``route.options(...)`` makes one)."""

    def __init__(self, route: DelayedRoute, options: dict[str, Any]) -> None:
        self.route = route
        self.sender = route.sender
        merged = {**self.sender.options,
                  **unalias_base_url(getattr(route.endpoint, _DEFAULTS, {})),
                  **unalias_base_url(options)}
        self.options = merged
        self.queue_path = check_queue_path(merged["queue_path"])
        self.transport = self.sender.transport(merged.get("client"))
        self.send_options = SendOptions(prepare=merged.get("pre_create_hook"),
                                        timeout=merged.get("task_create_timeout"))

    def message(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Message:
        """The message of one call: validated, encoded, addressed; nothing is sent."""
        call = self.route.call
        path, headers, body = call.request(args, kwargs)
        base = self.options["base_url"]
        url = callback_url(base, self.route.places, path)
        return compose(
            call.name, body, self.options,
            target=HttpTarget(path=url[len(base):], method=call.method, headers=headers),
            destination=Destination(queue_path=self.queue_path, url=url, method=call.method,
                                    relay=False))

    def delay(self, *args: Any, **kwargs: Any) -> Receipt:
        """Send the call as a task; returns its :class:`~celery_gcp.transport.Receipt`
        (``.name`` is the Cloud Tasks task name)."""
        message = self.message(args, kwargs)
        self._ensure_queue()
        return send(LAYERS, self.transport, message, self.send_options)

    def _ensure_queue(self) -> None:
        key = (id(self.transport), self.queue_path)
        if self.sender.auto_create_queue and key not in self.sender.ready:
            ensure_queue(client=self.transport.client(), path=self.queue_path)
            self.sender.ready.add(key)


class AsyncDelayer(Delayer):
    """The async :class:`Delayer`: ``await route.options(...).delay(...)``."""

    async def delay(self, *args: Any, **kwargs: Any) -> Receipt:  # type: ignore[override]
        """Send the call as a task without blocking the event loop."""
        message = self.message(args, kwargs)
        key = (id(self.transport), self.queue_path)
        if self.sender.auto_create_queue and key not in self.sender.ready:
            await ensure_queue_async(client=self.transport.async_client(), path=self.queue_path)
            self.sender.ready.add(key)
        return await asend(LAYERS, self.transport, message, self.send_options)


class DelayedRoute(BuiltRoute):
    """A route whose endpoint gets ``.delay()`` and ``.options()``."""

    endpoint_methods = ("delay", "options")
    sender: ClassVar[_Sender]
    delayer: ClassVar[type[Delayer]] = Delayer

    def options(self, **options: Any) -> Delayer:
        """A sender with these options (see :class:`DelayOptions`); unknown ones raise."""
        check_options("DelayOptions", options, _KNOWN)
        return self.delayer(self, options)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        """Send a call of this route as a task now, with the default options."""
        delayer = self.__dict__.get("_default")
        if delayer is None:  # made once: the defaults do not change
            delayer = self.__dict__["_default"] = self.options()
        return delayer.delay(*args, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, except for a task delivered past its ``expires``: that one is
        skipped (200, logged), as any task is."""
        handler = super().get_route_handler()
        name = self.name

        async def handle(request: Request) -> Response:
            headers = request.headers
            if "x-celery-expires" in headers and "x-celery-task-id" in headers:
                try:
                    message = Message.from_http(name, headers, b"")
                except MessageDecodeError:  # not ours to judge: the route runs as called
                    message = None
                if message is not None and expired(message, datetime.now(UTC)):
                    return skip_expired(message)
            return await handler(request)

        return handle


def DelayedRouteBuilder(
    *,
    queue_path: str,
    callback_base_url: str | None = None,
    base_url: str | None = None,
    task_create_timeout: float = 10.0,
    pre_create_hook: DelayedTaskHook | None = None,
    client: SyncTasksClient | None = None,
    auto_create_queue: bool = True,
) -> type[DelayedRoute]:
    """A route class (``APIRouter(route_class=...)``) whose endpoints send themselves to the
    Cloud Tasks queue ``queue_path``, to be called back at ``base_url`` (or its old name
    ``callback_base_url``).

    The URL is ``base_url``, then the mount paths and include prefixes above the route's
    router that ``base_url`` does not end with, then the route's path (its router's prefix
    included): ``base_url`` may be the app's URL, or name the prefixes as fastapi-gcp-tasks
    asks (see :func:`~celery_gcp.fastapi.builtroute.callback_url`).

    ``client`` is a ``CloudTasksClient``, or a function that makes one (called on the first
    ``.delay()``); default: the emulator where ``CLOUD_TASKS_EMULATOR_HOST`` is set, else
    Application Default Credentials. An object with a ``create_task`` method is a client (a
    mock too); a class or another callable is a factory. An async client raises
    ``TypeError`` here: use :func:`AsyncDelayedRouteBuilder` for it.
    ``auto_create_queue`` creates the queue on the first ``.delay()`` if it does not exist.
    """
    return _build(False, queue_path, base_url, callback_base_url, task_create_timeout,
                  pre_create_hook, client, auto_create_queue)


def AsyncDelayedRouteBuilder(
    *,
    queue_path: str,
    callback_base_url: str | None = None,
    base_url: str | None = None,
    task_create_timeout: float = 10.0,
    pre_create_hook: DelayedTaskHook | None = None,
    client: AsyncTasksClient | None = None,
    auto_create_queue: bool = False,
) -> type[DelayedRoute]:
    """:func:`DelayedRouteBuilder` whose ``.delay()`` is awaited. ``client`` is a
    ``CloudTasksAsyncClient`` or a function that makes one (called on first use, in the event
    loop); by default one per event loop is made from the environment. A sync client raises
    ``TypeError`` here: use :func:`DelayedRouteBuilder` for it."""
    return _build(True, queue_path, base_url, callback_base_url, task_create_timeout,
                  pre_create_hook, client, auto_create_queue)


def _build(asynchronous: bool, queue_path: str, base_url: str | None,
           callback_base_url: str | None, task_create_timeout: float,
           pre_create_hook: DelayedTaskHook | None, client: Any,
           auto_create_queue: bool) -> type[DelayedRoute]:
    options: dict[str, Any] = {
        "queue_path": check_queue_path(queue_path),
        "base_url": pick_base_url(base_url, callback_base_url),
        "task_create_timeout": task_create_timeout,
        "pre_create_hook": pre_create_hook,
        "client": check_client(client, service="tasks", asynchronous=asynchronous),
    }
    check_options("DelayOptions", options, _KNOWN)
    sender = _Sender(asynchronous=asynchronous, options=options,
                     auto_create_queue=auto_create_queue)
    name = "AsyncDelayedRoute" if asynchronous else "DelayedRoute"
    delayer = AsyncDelayer if asynchronous else Delayer
    return type(name, (DelayedRoute,), {"sender": sender, "delayer": delayer,
                                        "__module__": __name__})
