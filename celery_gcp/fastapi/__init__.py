"""Any FastAPI route as a Cloud Task or a Cloud Scheduler job (the fastapi-gcp-tasks API).

Example::

    from fastapi import APIRouter, FastAPI
    from celery_gcp.fastapi import DelayedRouteBuilder, queue_path

    DelayedRoute = DelayedRouteBuilder(
        queue_path=queue_path(project="p", location="us-central1", queue="default"),
        base_url="https://api.example.com",
    )
    router = APIRouter(route_class=DelayedRoute)

    @router.post("/hello")
    def hello(name: str) -> None: ...

    app = FastAPI()
    app.include_router(router)
    hello.delay(name="world")

Routes of a Celery app's ``app.TaskRoute`` get the Celery API (``.delay``, ``.apply_async``,
``.s``) instead; see :mod:`celery_gcp.fastapi.taskroute`.
"""

from .clients import (
    async_emulator_client,
    emulator_client,
    ensure_queue,
    ensure_queue_async,
    location_path,
    queue_path,
)
from .delayed import (
    AsyncDelayedRouteBuilder,
    AsyncDelayOptions,
    DelayedRouteBuilder,
    DelayOptions,
    TaskDefaultOptions,
    task_default_options,
)
from .dependencies import CloudSchedulerHeaders, CloudTasksHeaders, max_retries
from .exceptions import BadMethodError, MissingParamError, WrongTypeError
from .hooks import (
    DelayedTaskHook,
    ScheduledHook,
    chained_hook,
    deadline_delayed_hook,
    deadline_scheduled_hook,
    noop_hook,
    oauth_delayed_hook,
    oauth_scheduled_hook,
    oidc_delayed_hook,
    oidc_scheduled_hook,
)
from .protocols import (
    AsyncDelayedTask,
    AsyncScheduledTask,
    DelayedTask,
    ScheduledTask,
    TaskRouteEndpoint,
    as_async_delayed_task,
    as_async_scheduled_task,
    as_delayed_task,
    as_route_task,
    as_scheduled_task,
)
from .scheduled import (
    AsyncScheduledRouteBuilder,
    AsyncSchedulerOptions,
    ScheduledRouteBuilder,
    SchedulerOptions,
)
from .taskroute import task_options

__all__ = [
    "AsyncDelayOptions",
    "AsyncDelayedRouteBuilder",
    "AsyncDelayedTask",
    "AsyncScheduledRouteBuilder",
    "AsyncScheduledTask",
    "AsyncSchedulerOptions",
    "BadMethodError",
    "CloudSchedulerHeaders",
    "CloudTasksHeaders",
    "DelayOptions",
    "DelayedRouteBuilder",
    "DelayedTask",
    "DelayedTaskHook",
    "MissingParamError",
    "ScheduledHook",
    "ScheduledRouteBuilder",
    "ScheduledTask",
    "SchedulerOptions",
    "TaskDefaultOptions",
    "TaskRouteEndpoint",
    "WrongTypeError",
    "as_async_delayed_task",
    "as_async_scheduled_task",
    "as_delayed_task",
    "as_route_task",
    "as_scheduled_task",
    "async_emulator_client",
    "chained_hook",
    "deadline_delayed_hook",
    "deadline_scheduled_hook",
    "emulator_client",
    "ensure_queue",
    "ensure_queue_async",
    "location_path",
    "max_retries",
    "noop_hook",
    "oauth_delayed_hook",
    "oauth_scheduled_hook",
    "oidc_delayed_hook",
    "oidc_scheduled_hook",
    "queue_path",
    "task_default_options",
    "task_options",
]
