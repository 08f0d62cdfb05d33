"""Routes whose endpoints put themselves on a Cloud Scheduler cron: ``.scheduler()``.

Example::

    ScheduledRoute = ScheduledRouteBuilder(
        location_path=location_path(project="p", location="us-central1"),
        base_url="https://api.example.com",
    )
    router = APIRouter(route_class=ScheduledRoute)

    @router.post("/digest")
    def digest(hours: int = 24) -> None: ...

    job = digest.scheduler(name="daily-digest", schedule="0 7 * * *",
                           time_zone="Europe/Paris")
    job.schedule(hours=24)   # creates the job, or updates it in place
    job.delete()

The request a job sends is built exactly as ``.delay()`` builds a task's (see
:mod:`celery_gcp.fastapi.routecall`). ``.schedule()`` creates the job, or updates an existing one in
place with a field mask, so it keeps its history, and several instances scheduling at once
converge without errors (the last write wins).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from .. import beat, cron, gcp
from ..exceptions import InvalidSchedule
from ..message import CONTENT_TYPE
from ..platform import JOB_ID
from .builtroute import (
    BuiltRoute,
    callback_url,
    check_options,
    pick_base_url,
    unalias_base_url,
)
from .clients import check_client, check_location_path, make_client
from .hooks import ScheduledHook

if TYPE_CHECKING:
    from google.cloud import scheduler_v1

__all__ = [
    "AsyncScheduledRouteBuilder",
    "AsyncScheduler",
    "AsyncSchedulerOptions",
    "ScheduledRouteBuilder",
    "Scheduler",
    "SchedulerOptions",
]


class _SchedulerFields(TypedDict, total=False):
    retry_config: scheduler_v1.RetryConfig
    time_zone: str
    force: bool
    job_create_timeout: float
    callback_base_url: str
    base_url: str
    location_path: str
    pre_create_hook: ScheduledHook
    description: str


class SchedulerOptions(_SchedulerFields, total=False):
    """What ``.scheduler()`` takes besides ``name`` and ``schedule``."""

    client: scheduler_v1.CloudSchedulerClient | Callable[[], scheduler_v1.CloudSchedulerClient]


class AsyncSchedulerOptions(_SchedulerFields, total=False):
    """What ``.scheduler()`` of an async route takes (``client``: a
    ``CloudSchedulerAsyncClient`` or a function that makes one)."""

    client: (scheduler_v1.CloudSchedulerAsyncClient
             | Callable[[], scheduler_v1.CloudSchedulerAsyncClient])


_KNOWN = SchedulerOptions.__required_keys__ | SchedulerOptions.__optional_keys__ | {
    "name", "schedule"}


class Scheduler:
    """One Cloud Scheduler job for a route: ``.schedule(...)`` puts it, ``.delete()`` removes
    it. ``job_id`` is the job's full name."""

    def __init__(self, route: ScheduledRoute, options: dict[str, Any]) -> None:
        name, schedule = options.get("name"), options.get("schedule")
        if not isinstance(name, str) or not JOB_ID.match(name):
            raise ValueError(f"job name {name!r}: use 1 to 500 letters, digits, '-' or '_'")
        if not isinstance(schedule, str):
            raise TypeError(f"schedule={schedule!r}: give a cron expression such as "
                            "'0 7 * * *'")
        merged = {**route.defaults, **unalias_base_url(options)}
        time_zone = merged.get("time_zone") or "UTC"
        try:
            cron.zone(time_zone)
        except InvalidSchedule:
            raise ValueError(f"time_zone {time_zone!r} is not an IANA zone name such as "
                             "'Europe/Paris'") from None
        cron.validate(schedule, time_zone)  # InvalidSchedule says what is wrong
        check_client(merged.get("client"), service="scheduler", asynchronous=route.asynchronous)
        self.route = route
        self.options = merged
        self.time_zone = time_zone
        self.location_path = check_location_path(merged["location_path"])
        #: The job's full name: ``{location_path}/jobs/{name}``.
        self.job_id = f"{self.location_path}/jobs/{name}"
        self.schedule_expression = schedule
        timeout = merged.get("job_create_timeout")
        self._call = {"timeout": timeout} if timeout is not None else {}

    def request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The ``scheduler_v1.CreateJobRequest`` for a job calling the route with these
        arguments, after the ``pre_create_hook``."""
        from google.cloud import scheduler_v1

        call = self.route.call
        path, headers, body = call.request(args, kwargs)
        if body:
            headers["Content-Type"] = CONTENT_TYPE
        url = callback_url(self.options["base_url"], self.route.places, path)
        job = scheduler_v1.Job.wrap(beat.http_job(
            self.job_id, self.schedule_expression, self.time_zone, url,
            description=self.options.get("description") or "", method=call.method,
            headers=headers, body=body))
        if self.options.get("retry_config") is not None:
            job.retry_config = self.options["retry_config"]
        request = scheduler_v1.CreateJobRequest(parent=self.location_path, job=job)
        hook = self.options.get("pre_create_hook")
        return hook(request) if hook is not None else request

    def schedule(self, *args: Any, **kwargs: Any) -> Any:
        """Create the job, or update it in place; returns the ``scheduler_v1.Job``."""
        request = self.request(args, kwargs)
        client = self.route.client(self.options.get("client"))
        return beat.put_job(client, request.parent, request.job, **self._call)[1]

    def delete(self) -> bool | Exception:
        """Delete the job: ``True``, or the error (e.g. ``NotFound``) as the value."""
        try:
            self.route.client(self.options.get("client")).delete_job(name=self.job_id,
                                                                      **self._call)
        except Exception as exc:
            return exc
        return True


class AsyncScheduler(Scheduler):
    """The async :class:`Scheduler`: ``await job.schedule(...)``, ``await job.delete()``."""

    async def schedule(self, *args: Any, **kwargs: Any) -> Any:
        """Create the job, or update it in place."""
        request = self.request(args, kwargs)
        client = self.route.client(self.options.get("client"))
        return (await beat.aput_job(client, request.parent, request.job, **self._call))[1]

    async def delete(self) -> bool | Exception:  # type: ignore[override]
        """Delete the job: ``True``, or the error as the value."""
        try:
            await self.route.client(self.options.get("client")).delete_job(
                name=self.job_id, **self._call)
        except Exception as exc:
            return exc
        return True


class ScheduledRoute(BuiltRoute):
    """A route whose endpoint gets ``.scheduler()``."""

    endpoint_methods = ("scheduler",)
    defaults: ClassVar[dict[str, Any]]
    asynchronous: ClassVar[bool] = False
    _clients: ClassVar[dict[tuple[int, Any], Any]]
    _lock: ClassVar[threading.Lock]

    def scheduler(self, **options: Any) -> Scheduler:
        """The job ``name`` on cron ``schedule`` for this route (see
        :class:`SchedulerOptions`); nothing is sent until ``.schedule()``."""
        check_options("SchedulerOptions", options, _KNOWN)
        kind = AsyncScheduler if self.asynchronous else Scheduler
        return kind(self, options)

    @classmethod
    def client(cls, given: Any) -> Any:
        """The client to use: ``given`` (or what it makes), else one from the environment."""
        # An async client from the environment belongs to the event loop it was made in.
        loop = asyncio.get_running_loop() if cls.asynchronous and given is None else None
        with cls._lock:
            client = cls._clients.get((id(given), loop))
            if client is None:
                if given is None:
                    client = gcp.scheduler_client(cls.asynchronous)
                else:
                    client = make_client(given, service="scheduler",
                                         asynchronous=cls.asynchronous)
                cls._clients[(id(given), loop)] = client
            return client


def ScheduledRouteBuilder(
    *,
    location_path: str,
    callback_base_url: str | None = None,
    base_url: str | None = None,
    job_create_timeout: float = 10.0,
    pre_create_hook: ScheduledHook | None = None,
    client: (scheduler_v1.CloudSchedulerClient
             | Callable[[], scheduler_v1.CloudSchedulerClient] | None) = None,
) -> type[ScheduledRoute]:
    """A route class whose endpoints can be put on a Cloud Scheduler cron in
    ``location_path`` (``projects/P/locations/L``), calling ``base_url`` and the route's path
    (by the rule of :func:`~celery_gcp.fastapi.DelayedRouteBuilder`).
    ``client``: a ``CloudSchedulerClient`` or a function that makes one (told apart by
    ``create_job``, as ``DelayedRouteBuilder`` tells them by ``create_task``); default: the
    emulator where ``CLOUD_SCHEDULER_EMULATOR_HOST`` is set, else Application Default
    Credentials. An async client raises ``TypeError``: use
    :func:`AsyncScheduledRouteBuilder` for it."""
    return _build(False, location_path, base_url, callback_base_url, job_create_timeout,
                  pre_create_hook, client)


def AsyncScheduledRouteBuilder(
    *,
    location_path: str,
    callback_base_url: str | None = None,
    base_url: str | None = None,
    job_create_timeout: float = 10.0,
    pre_create_hook: ScheduledHook | None = None,
    client: (scheduler_v1.CloudSchedulerAsyncClient
             | Callable[[], scheduler_v1.CloudSchedulerAsyncClient] | None) = None,
) -> type[ScheduledRoute]:
    """:func:`ScheduledRouteBuilder` whose ``.schedule()`` and ``.delete()`` are awaited;
    ``client`` is a ``CloudSchedulerAsyncClient`` or a function that makes one (a sync
    client raises ``TypeError``: use :func:`ScheduledRouteBuilder` for it)."""
    return _build(True, location_path, base_url, callback_base_url, job_create_timeout,
                  pre_create_hook, client)


def _build(asynchronous: bool, location_path: str, base_url: str | None,
           callback_base_url: str | None, job_create_timeout: float,
           pre_create_hook: ScheduledHook | None, client: Any) -> type[ScheduledRoute]:
    defaults = {
        "location_path": check_location_path(location_path),
        "base_url": pick_base_url(base_url, callback_base_url),
        "job_create_timeout": job_create_timeout,
        "pre_create_hook": pre_create_hook,
        "client": check_client(client, service="scheduler", asynchronous=asynchronous),
    }
    check_options("SchedulerOptions", defaults, _KNOWN)
    name = "AsyncScheduledRoute" if asynchronous else "ScheduledRoute"
    return type(name, (ScheduledRoute,), {
        "defaults": defaults, "asynchronous": asynchronous, "_clients": {},
        "_lock": threading.Lock(), "__module__": __name__})
