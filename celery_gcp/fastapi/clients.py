"""Resource paths, queue creation and emulator clients for the FastAPI route builders.

Example::

    QUEUE = queue_path(project="my-project", location="us-central1", queue="emails")
    DelayedRoute = DelayedRouteBuilder(queue_path=QUEUE, base_url="https://api.example.com")
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Literal

from ..gcp import is_client_factory
from ..platform import LOCATION_PATH, QUEUE_PATH

__all__ = [
    "async_emulator_client",
    "emulator_client",
    "ensure_queue",
    "ensure_queue_async",
    "location_path",
    "queue_path",
]

#: Per service: the method a client has, then the (sync, async) builders and client classes.
_KINDS = {
    "tasks": ("create_task", ("DelayedRouteBuilder", "AsyncDelayedRouteBuilder"),
              ("CloudTasksClient", "CloudTasksAsyncClient")),
    "scheduler": ("create_job", ("ScheduledRouteBuilder", "AsyncScheduledRouteBuilder"),
                  ("CloudSchedulerClient", "CloudSchedulerAsyncClient")),
}
Service = Literal["tasks", "scheduler"]


def check_client(given: Any, *, service: Service, asynchronous: bool) -> Any:
    """``given`` (what a builder or ``.options()`` was passed as ``client``) if it can be
    used by a builder of that kind: ``None`` (a client from the environment), a client, or a
    function that makes one (a class, or a callable without the client's ``create_task`` /
    ``create_job``: see :func:`celery_gcp.gcp.is_client_factory`), whose client is checked
    when :func:`make_client` makes it. A client of the other kind (sync for an async builder,
    or async for a sync one: told by whether its ``create_task`` is a coroutine function)
    raises ``TypeError`` naming the builder to use."""
    method, builders, classes = _KINDS[service]
    if given is None or is_client_factory(given, method):
        return given
    call = getattr(given, method, None)
    if call is None:
        raise TypeError(
            f"{builders[asynchronous]}: client={given!r} is not a {classes[asynchronous]} "
            f"(it has no {method}()) nor a function that makes one")
    if inspect.iscoroutinefunction(call) != asynchronous:
        kind = "an async" if not asynchronous else "a sync"
        raise TypeError(
            f"{builders[asynchronous]}: client={given!r} is {kind} client (its {method}() "
            f"{'is' if not asynchronous else 'is not'} a coroutine function), which this "
            f"builder cannot use; use {builders[not asynchronous]} for it, or pass a "
            f"{classes[asynchronous]} (in tests: MagicMock(spec={classes[asynchronous]}))")
    return given


def make_client(given: Any, *, service: Service, asynchronous: bool) -> Any:
    """The client ``given`` is, or the one it makes (checked by :func:`check_client`)."""
    given = check_client(given, service=service, asynchronous=asynchronous)
    if given is not None and is_client_factory(given, _KINDS[service][0]):
        made = given()
        if made is None or is_client_factory(made, _KINDS[service][0]):
            raise TypeError(f"the client factory {given!r} returned {made!r}, not a client")
        return check_client(made, service=service, asynchronous=asynchronous)
    return given

def location_path(*, project: str, location: str) -> str:
    """``projects/{project}/locations/{location}``."""
    return f"projects/{project}/locations/{location}"


def queue_path(*, project: str, location: str, queue: str) -> str:
    """``projects/{project}/locations/{location}/queues/{queue}``."""
    return f"{location_path(project=project, location=location)}/queues/{queue}"


def check_queue_path(path: str) -> str:
    """``path`` if it is a full queue name; raises ``ValueError`` saying how to make one."""
    if not isinstance(path, str) or not QUEUE_PATH.match(path):
        raise ValueError(f"queue_path {path!r} is not projects/P/locations/L/queues/Q (queue ids "
                         "take letters, digits and '-'); build it with queue_path(...)")
    return path


def check_location_path(path: str) -> str:
    """``path`` if it is a full location name; raises ``ValueError`` otherwise."""
    if not isinstance(path, str) or not LOCATION_PATH.match(path):
        raise ValueError(f"location_path {path!r} is not projects/P/locations/L; build it with "
                         "location_path(...)")
    return path


def ensure_queue(*, client: Any, path: str, **queue: Any) -> None:
    """Create the queue at ``path`` (with ``queue``'s fields, e.g. ``rate_limits``) unless it
    exists; an existing queue is left as it is."""
    from google.api_core import exceptions
    from google.cloud import tasks_v2

    parent = path.rsplit("/queues/", 1)[0]
    with contextlib.suppress(exceptions.AlreadyExists):
        client.create_queue(parent=parent, queue=tasks_v2.Queue(name=path, **queue))


async def ensure_queue_async(*, client: Any, path: str, **queue: Any) -> None:
    """Async :func:`ensure_queue` on a ``CloudTasksAsyncClient``."""
    from google.api_core import exceptions
    from google.cloud import tasks_v2

    parent = path.rsplit("/queues/", 1)[0]
    with contextlib.suppress(exceptions.AlreadyExists):
        await client.create_queue(parent=parent, queue=tasks_v2.Queue(name=path, **queue))


def emulator_client(*, host: str = "localhost:8123") -> Any:
    """A ``CloudTasksClient`` for an emulator at ``host`` (plain gRPC, no credentials)."""
    from ..emulator import clients

    return clients.tasks_client(host)


def async_emulator_client(*, host: str = "localhost:8123") -> Any:
    """A ``CloudTasksAsyncClient`` for an emulator at ``host`` (make it in the event loop
    that uses it)."""
    from ..emulator import clients

    return clients.async_tasks_client(host)

