"""FastAPI routes as tasks, two ways, served by one FastAPI app:

- ``app.TaskRoute``: each route is a Celery task of the app (``.delay``, ``.apply_async``,
  autoretry, signals), sent as the route's own HTTP request;
- ``DelayedRouteBuilder``: the fastapi-gcp-tasks API (``.delay``, ``.options``).

Run it end to end, through the local emulator and a real HTTP server:

    celery-gcp -A examples.routes.tasks dev --asgi examples.routes.tasks:api \\
        --run examples.routes.tasks:demo --exit-when-idle

(``EXAMPLE_BASE_URL`` is where the builder's tasks call back: ``dev`` serves on port 8000.)
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header
from pydantic import BaseModel

from celery_gcp import Celery
from celery_gcp.fastapi import DelayedRouteBuilder, queue_path, task_options

app = Celery("routes")
app.conf.update(task_default_queue="default")


class Amount(BaseModel):
    cents: int
    currency: str = "EUR"


def tenant(x_tenant: Annotated[str, Header()]) -> str:
    """A dependency: its header parameter travels with the task, the worker resolves it."""
    return x_tenant.lower()


attempts: dict[int, int] = {}
orders = APIRouter(route_class=app.TaskRoute, prefix="/orders")


@orders.post("/{order_id}/charge")
@task_options(autoretry_for=(ConnectionError,), max_retries=3, default_retry_delay=1)
def charge(order_id: int, amount: Amount,
           shop: Annotated[str, Depends(tenant)]) -> dict[str, object]:
    """Charge an order; the payment service fails once, and the task is retried."""
    attempts[order_id] = attempts.get(order_id, 0) + 1
    if attempts[order_id] == 1:
        raise ConnectionError("payment service unavailable")
    return {"order": order_id, "shop": shop, "charged": f"{amount.cents} {amount.currency}"}


DelayedRoute = DelayedRouteBuilder(
    queue_path=queue_path(project="local", location=app.conf.gcp_location, queue="default"),
    base_url=os.environ.get("EXAMPLE_BASE_URL", "http://127.0.0.1:8000"),
)
notifications = APIRouter(route_class=DelayedRoute, prefix="/notify")


@notifications.post("/{user_id}")
def notify(user_id: int, message: str, channels: list[str] | None = None) -> None:
    """A plain route whose endpoint gained .delay()."""
    print(f"notify user {user_id} by {', '.join(channels or ['email'])}: {message}",
          flush=True)


api = FastAPI()
api.include_router(app.router)
api.include_router(orders, prefix="/api")
api.include_router(notifications)


def demo() -> None:
    """Charge an order (a Celery task that retries once) and send a notification."""
    charge.delay(7, amount={"cents": 1250}, x_tenant="ACME")  # type: ignore[attr-defined]
    notify.options(countdown=1).delay(7, message="your order is paid",  # type: ignore[attr-defined]
                                      channels=["email", "sms"])
