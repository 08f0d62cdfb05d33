"""Checked by mypy in tests/test_typing.py: the lines marked with an error code must fail."""

from __future__ import annotations

from fastapi import APIRouter

from celery_gcp import Celery
from celery_gcp.fastapi import (
    AsyncDelayedRouteBuilder,
    DelayedRouteBuilder,
    ScheduledRouteBuilder,
    as_async_delayed_task,
    as_delayed_task,
    as_route_task,
    as_scheduled_task,
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
