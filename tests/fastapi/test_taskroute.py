"""app.TaskRoute: routes as Celery tasks, end to end (emulator, verified tokens, real HTTP)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Query
from google.cloud import tasks_v2
from pydantic import BaseModel

from celery_gcp import Celery, signals
from celery_gcp.exceptions import ImproperlyConfigured, TaskArgumentError
from celery_gcp.fastapi.taskroute import task_options
from celery_gcp.testing import drain, serve

from .conftest import Site


class Amount(BaseModel):
    cents: int


class Flaky(Exception):
    pass


def tenant(x_tenant: Annotated[str, Header()]) -> str:
    return x_tenant.upper()


def make_app(site: Site, **settings: Any) -> Celery:
    return Celery("proj", gcp_project="p", gcp_location="l", task_base_url=site.url,
                  task_auth="oidc", task_oidc_certs_url=site.emu.certs_url,
                  gcp_service_account="tasks@p.iam.gserviceaccount.com",
                  task_default_queue="routes", **settings)


def orders(site: Site, app: Celery) -> Any:
    router = APIRouter(route_class=app.TaskRoute, prefix="/orders")
    attempts: dict[int, int] = {}

    @router.post("/{order_id}/charge")
    @task_options(name="orders.charge", autoretry_for=(Flaky,), max_retries=3,
                  default_retry_delay=0)
    def charge(order_id: int, amount: Amount, who: Annotated[str, Depends(tenant)],
               fail_times: int = 0) -> dict[str, Any]:
        attempts[order_id] = attempts.get(order_id, 0) + 1
        if attempts[order_id] <= fail_times:
            raise Flaky(f"attempt {attempts[order_id]}")
        site.received.record("charge", (order_id, amount, who, attempts[order_id]))
        return {"charged": amount.cents}

    site.api.include_router(router, prefix="/api")
    return charge


def test_delay_runs_the_route_as_a_task(site: Site) -> None:
    app = make_app(site)
    charge = orders(site, app)
    sent: list[str] = []
    ran: list[str] = []

    def on_publish(sender: Any = None, **kw: Any) -> None:
        sent.append(sender)

    def on_success(sender: Any = None, **kw: Any) -> None:
        ran.append(sender.name)

    def on_received(request: Any = None, **kw: Any) -> None:
        ran.append(f"received {request.task}")

    signals.before_task_publish.connect(on_publish)
    signals.task_success.connect(on_success)
    signals.task_received.connect(on_received)
    try:
        result = charge.delay(7, amount={"cents": 500}, x_tenant="acme")
        assert site.received.wait_for(1) == [("charge", (7, Amount(cents=500), "ACME", 1))]
    finally:
        signals.before_task_publish.disconnect(on_publish)
        signals.task_success.disconnect(on_success)
        signals.task_received.disconnect(on_received)
    assert charge.name == "orders.charge"
    assert "orders.charge" in app.tasks
    assert sent == ["orders.charge"]
    assert ran == ["received orders.charge", "orders.charge"]
    assert result.id
    # Not a task of the worker router: it is served by its own route.
    assert all(not getattr(r, "path", "").endswith("orders.charge") for r in app.router.routes)


def test_autoretry_resends_the_delivered_request(site: Site) -> None:
    app = make_app(site)
    charge = orders(site, app)
    charge.apply_async((8,), {"amount": Amount(cents=1), "x_tenant": "t", "fail_times": 2},
                       queue="routes")
    # The tenant header (a dependency's parameter) survives both retries.
    assert site.received.wait_for(1) == [("charge", (8, Amount(cents=1), "T", 3))]


def test_app_routing_and_plain_calls(site: Site) -> None:
    app = make_app(site, task_routes={"orders.*": {"queue": "payments"}})
    site.emu.tasks_client().create_queue(parent="projects/p/locations/l",
                                         queue={"name": "projects/p/locations/l/queues/payments"})
    charge = orders(site, app)
    result = charge.apply_async((9,), {"amount": {"cents": 2}, "x_tenant": "z"}, countdown=3600)
    task = site.emu.tasks_client().get_task(
        request={"name": result.location, "response_view": tasks_v2.Task.View.FULL})
    assert result.location.startswith("projects/p/locations/l/queues/payments/tasks/")
    assert task.http_request.url == f"{site.url}/api/orders/9/charge"
    assert task.http_request.headers["x-tenant"] == "z"
    # A plain HTTP call (no task metadata) is an ordinary endpoint call.
    answer = httpx.post(f"{site.url}/api/orders/10/charge", json={"cents": 3},
                        headers={"X-Tenant": "q"})
    assert answer.status_code == 200
    assert answer.json() == {"charged": 3}


def test_forged_deliveries_are_refused(site: Site) -> None:
    app = make_app(site)
    orders(site, app)
    answer = httpx.post(f"{site.url}/api/orders/11/charge", json={"cents": 3},
                        headers={"X-Tenant": "q", "X-Celery-Task-Id": "forged",
                                 "X-Celery-Relay": "1"})
    assert answer.status_code == 401
    assert site.received.calls == []


def test_call_site_errors(site: Site) -> None:
    app = make_app(site)
    charge = orders(site, app)
    with pytest.raises(TaskArgumentError, match=r"missing required argument.*'amount'"):
        charge.delay(1)
    with pytest.raises(TaskArgumentError, match="argument 'amount'"):
        charge.delay(1, amount={"cents": "lots"}, x_tenant="t")
    with pytest.raises(TypeError, match="multiple values for argument 'order_id'"):
        charge.delay(1, order_id=2, amount={"cents": 1}, x_tenant="t")


def test_eager_mode_runs_routes_without_dependencies() -> None:
    app = Celery("proj", task_always_eager=True, task_base_url="http://worker")
    router = APIRouter(route_class=app.TaskRoute)

    @router.post("/price/{order_id}")
    def price(order_id: int, amount: Amount) -> int:
        return order_id * amount.cents

    @router.post("/with-dependency")
    def tenanted(who: Annotated[str, Depends(tenant)]) -> str:
        return who

    assert price.delay(3, amount={"cents": 5}).get() == 15  # type: ignore[attr-defined]
    with pytest.raises(ImproperlyConfigured, match="declares FastAPI dependencies"):
        tenanted.delay(x_tenant="t").get()  # type: ignore[attr-defined]


def test_recorded_route_tasks_are_drained_through_the_app() -> None:
    # broker_url="memory://" records route messages as any; drain() delivers them to the
    # route (its method, path, query and headers), retries included.
    app = Celery("proj", broker="memory://")
    router = APIRouter(route_class=app.TaskRoute, prefix="/r")
    got: list[tuple[str, list[str], str]] = []

    @router.put("/items/{item_id}")
    @task_options(autoretry_for=(LookupError,), max_retries=1, default_retry_delay=0)
    def put_item(item_id: str, tags: Annotated[list[str], Query()],
                 x_tag: Annotated[str, Header()]) -> str:
        got.append((item_id, tags, x_tag))
        if len(got) == 1:
            raise LookupError("not yet")
        return "stored"

    api = FastAPI()
    api.include_router(router)
    with serve(api) as url, httpx.Client(base_url=url) as client:
        app.conf.task_base_url = url
        put_item.delay("a b", tags=["x", "y"], x_tag="t")  # type: ignore[attr-defined]
        delivered = drain(client, app)
    assert [(m.retries, r.status_code) for m, r in delivered] == [(0, 200), (1, 200)], [
        (m.target, r.text) for m, r in delivered]
    assert delivered[1][1].json() == "stored"
    assert got == [("a b", ["x", "y"], "t")] * 2


def test_two_routes_with_one_task_name_are_refused() -> None:
    app = Celery("proj")
    router = APIRouter(route_class=app.TaskRoute)

    @router.post("/a")
    def index() -> None: ...

    with pytest.raises(ImproperlyConfigured, match=r"task name '.*index' is taken"):
        @router.post("/b")
        def index() -> None: ...  # the same name again: the mistake under test


async def test_async_route_runs_and_retries_on_the_event_loop(site: Site) -> None:
    app = make_app(site)
    router = APIRouter(route_class=app.TaskRoute)
    seen: list[int] = []

    @router.patch("/counters/{key}")
    @task_options(autoretry_for=(Flaky,), max_retries=2, default_retry_delay=0)
    async def bump(key: str, by: Amount) -> int:
        seen.append(by.cents)
        if len(seen) == 1:
            raise Flaky("first attempt")
        site.received.record("bump", (key, by.cents, len(seen)))
        return by.cents

    site.api.include_router(router)
    result = await bump.adelay("k 1", by={"cents": 4})  # type: ignore[attr-defined]
    await asyncio.to_thread(site.received.wait_for, 1)
    assert site.received.calls == [("bump", ("k 1", 4, 2))]
    assert result.id


def test_a_start_beyond_30_days_is_relayed_by_the_route(site: Site) -> None:
    app = make_app(site)
    charge = orders(site, app)
    result = charge.apply_async((12,), {"amount": {"cents": 1}, "x_tenant": "t"},
                                countdown=40 * 86400)
    client = site.emu.tasks_client()
    hop = client.get_task(request={"name": result.location,
                                   "response_view": tasks_v2.Task.View.FULL})
    http = hop.http_request
    assert http.headers["X-Celery-Relay"] == "1"
    assert hop.schedule_time < datetime.now(UTC) + timedelta(days=30)
    # Cloud Tasks delivers the hop at its time: the route sends the next step, does not run.
    assert site.emu.server is not None
    token = site.emu.server.issuer.mint(app.conf.gcp_service_account, http.url)
    answer = httpx.request("POST", http.url, content=http.body, headers={
        **http.headers, "Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.json()["state"] == "PENDING"
    assert site.received.calls == []
