"""Checked by mypy in tests/test_typing.py: the lines marked with an error code must fail."""

from __future__ import annotations

from fastapi import APIRouter
from google.cloud import scheduler_v1, tasks_v2

from celery_gcp import Celery
from celery_gcp.fastapi import (
    AsyncDelayedRouteBuilder,
    DelayedRouteBuilder,
    ScheduledRouteBuilder,
    as_async_delayed_task,
    as_delayed_task,
    as_route_task,
    as_scheduled_task,
    noop_hook,
    task_default_options,
)

QUEUE = "projects/p/locations/l/queues/q"
router = APIRouter(route_class=DelayedRouteBuilder(queue_path=QUEUE, base_url="http://x"))
arouter = APIRouter(route_class=AsyncDelayedRouteBuilder(queue_path=QUEUE, base_url="http://x"))
srouter = APIRouter(route_class=ScheduledRouteBuilder(location_path="projects/p/locations/l",
                                                       base_url="http://x"))


@router.post("/welcome/{user_id}")
def _welcome(user_id: int, lang: str = "en") -> None: ...


welcome = as_delayed_task(_welcome)
welcome.delay(user_id=7)
welcome.delay(7, lang="fr")
welcome.options(countdown=60).delay(user_id=7)
welcome.delay(user_id="7")  # E: arg-type
welcome.delay(lang="fr")  # E: call-arg
welcome.delay(user_id=7, bogus=1)  # E: call-arg
welcome.options(countdown="soon")  # E: arg-type
welcome.options(eta=5)  # E: call-arg


@arouter.post("/ping")
async def _ping(n: int) -> None: ...


ping = as_async_delayed_task(_ping)


async def send() -> None:
    await ping.delay(n=1)
    await ping.delay(n="1")  # E: arg-type


@srouter.post("/digest")
def _digest(hours: int) -> None: ...


digest = as_scheduled_task(_digest)
digest.scheduler(name="d", schedule="0 7 * * *").schedule(hours=24)
digest.scheduler(name="d", schedule="0 7 * * *").schedule(hours="24")  # E: arg-type
digest.scheduler(schedule="0 7 * * *")  # E: call-arg


app = Celery("proj")
trouter = APIRouter(route_class=app.TaskRoute)


@trouter.post("/charge/{order_id}")
def _charge(order_id: int, cents: int = 0) -> str:
    return f"{order_id}: {cents}"


charge = as_route_task(_charge)
charge.delay(7, cents=5).get()
charge.apply_async((7,), {"cents": 5}, countdown=60)
charge.s(7)
charge.delay("7")  # E: arg-type
charge.delay(7, euros=5)  # E: call-arg


# task_default_options: each option is checked as .options() checks it.
@router.post("/report")
@task_default_options(countdown=30, expires=3600, task_id="r", task_create_timeout=5,
                      base_url="http://x", queue_path=QUEUE, pre_create_hook=noop_hook)
def _report() -> None: ...


task_default_options(countdown="soon")  # E: call-overload
task_default_options(expires="later")  # E: call-overload
task_default_options(task_id=42)  # E: call-overload
task_default_options(task_create_timeout="10")  # E: call-overload
task_default_options(callback_base_url=None)  # E: call-overload
task_default_options(base_url=8080)  # E: call-overload
task_default_options(queue_path=["q"])  # E: call-overload
task_default_options(pre_create_hook="hook")  # E: call-overload
task_default_options(eta=5)  # E: call-overload
task_default_options(client="emulator")  # E: call-overload


def clients(sync: tasks_v2.CloudTasksClient, aio: tasks_v2.CloudTasksAsyncClient) -> None:
    task_default_options(client=sync)
    task_default_options(client=aio)
    welcome.options(client=sync)
    welcome.options(client=aio)  # E: arg-type
    ping.options(client=aio)
    ping.options(client=lambda: aio)
    ping.options(client=sync)  # E: arg-type
    DelayedRouteBuilder(queue_path=QUEUE, base_url="http://x", client=sync)
    DelayedRouteBuilder(queue_path=QUEUE, base_url="http://x", client=aio)  # E: arg-type
    AsyncDelayedRouteBuilder(queue_path=QUEUE, base_url="http://x", client=sync)  # E: arg-type


def scheduler_clients(aio: scheduler_v1.CloudSchedulerAsyncClient) -> None:
    digest.scheduler(name="d", schedule="0 7 * * *", client=aio)  # E: arg-type
    ScheduledRouteBuilder(location_path="projects/p/locations/l", base_url="http://x",
                          client=aio)  # E: arg-type
