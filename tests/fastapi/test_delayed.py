"""Routes as Cloud Tasks: every parameter kind arrives exactly as sent, through the emulator
into the real app over HTTP; the builders' options, hooks and errors."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import grpc
import pytest
from fastapi import APIRouter, Body, Cookie, Depends, Header, Query
from google.cloud import tasks_v2
from pydantic import BaseModel

from celery_gcp.exceptions import DuplicateTaskError, TaskArgumentError
from celery_gcp.fastapi import (
    AsyncDelayedRouteBuilder,
    BadMethodError,
    CloudTasksHeaders,
    DelayedRouteBuilder,
    MissingParamError,
    ScheduledRouteBuilder,
    WrongTypeError,
    chained_hook,
    deadline_delayed_hook,
    oidc_delayed_hook,
    task_default_options,
)

from .conftest import LOCATION, QUEUE, Site


class Color(enum.Enum):
    RED = "r"
    BLUE = "b"


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class Filters(BaseModel):
    max_price: float | None = None
    tags: list[str] = []


def paging(limit: int = 10, offset: int = 0) -> dict[str, int]:
    return {"limit": limit, "offset": offset}


def resolved_on_worker() -> str:
    return "from-worker"


def routes(site: Site, **builder: Any) -> APIRouter:
    """The matrix: one route per parameter kind, each recording what it received."""
    route_class = DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url, **builder)
    router = APIRouter(route_class=route_class, prefix="/m")
    got = site.received.record

    @router.post("/path/{item_id}/{rest:path}")
    def path(item_id: str, rest: str) -> None:
        got("path", (item_id, rest))

    @router.post("/query")
    def query(n: int, text: str, ratio: float = 0.5, flag: bool = False,
              when: datetime | None = None) -> None:
        got("query", (n, text, ratio, flag, when))

    @router.post("/list")
    def listing(tags: Annotated[list[str], Query()],
                ids: Annotated[list[int] | None, Query()] = None) -> None:
        got("list", (tags, ids))

    @router.post("/enum")
    def enumerated(color: Color, colors: Annotated[list[Color] | None, Query()] = None
                   ) -> None:
        got("enum", (color, colors))

    @router.post("/optional")
    def optional(note: str | None = None, count: int | None = None) -> None:
        got("optional", (note, count))

    @router.post("/header")
    def header(x_request_tag: Annotated[str, Header()],
               plain: Annotated[str | None, Header(convert_underscores=False)] = None) -> None:
        got("header", (x_request_tag, plain))

    @router.post("/cookie")
    def cookie(session: Annotated[str, Cookie()], theme: Annotated[str, Cookie()] = "dark"
               ) -> None:
        got("cookie", (session, theme))

    @router.post("/body")
    def body(item: Item) -> None:
        got("body", item)

    @router.post("/bodies")
    def bodies(item: Item, quantity: Annotated[int, Body()], note: Annotated[str, Body()] = ""
               ) -> None:
        got("bodies", (item, quantity, note))

    @router.post("/embed")
    def embed(item: Annotated[Item, Body(embed=True)]) -> None:
        got("embed", item)

    @router.put("/depends/{key}")
    def depends(key: str, page: Annotated[dict[str, int], Depends(paging)],
                source: Annotated[str, Depends(resolved_on_worker)]) -> None:
        got("depends", (key, page, source))

    @router.get("/get")
    def get(q: str) -> None:
        got("get", q)

    @router.get("/fetch")
    def fetch(item: Item) -> None:
        got("fetch", item)

    @router.post("/filtered")
    def filtered(filters: Annotated[Filters, Query()],
                 x_trace_id: Annotated[str, Header()] = "-") -> None:
        got("filtered", (filters, x_trace_id))

    @router.post("/agent")
    def agent(user_agent: Annotated[str | None, Header()] = None) -> None:
        got("agent", user_agent)

    site.api.include_router(router)
    return router


CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], Any]] = [
    ("path", ("a b c?d#e%&é", "x/y z?/"), {}, ("a b c?d#e%&é", "x/y z?/")),
    ("query", (), {"n": -3, "text": "a&b=c?d #é", "ratio": 1e-7, "flag": True,
                   "when": datetime(2027, 3, 28, 1, 30, tzinfo=UTC)},
     (-3, "a&b=c?d #é", 1e-7, True, datetime(2027, 3, 28, 1, 30, tzinfo=UTC))),
    ("listing", (), {"tags": ["a", "b c", "a"], "ids": [3, 1]}, (["a", "b c", "a"], [3, 1])),
    ("enumerated", (Color.BLUE,), {"colors": [Color.RED, "b"]},
     (Color.BLUE, [Color.RED, Color.BLUE])),
    ("optional", (), {"count": 0}, (None, 0)),
    ("header", (), {"x_request_tag": "t-1", "plain": "p"}, ("t-1", "p")),
    ("cookie", ('v;"x y\\z',), {"theme": "light"}, ('v;"x y\\z', "light")),
    ("body", (), {"item": {"name": "n", "price": 2.5}}, Item(name="n", price=2.5)),
    ("bodies", (Item(name="n", price=1, tags=["t"]), 4), {"note": "ok"},
     (Item(name="n", price=1, tags=["t"]), 4, "ok")),
    ("embed", (), {"item": Item(name="e", price=0)}, Item(name="e", price=0)),
    ("depends", ("k 1",), {"limit": 5}, ("k 1", {"limit": 5, "offset": 0}, "from-worker")),
    ("get", (), {"q": "x y"}, "x y"),
    ("filtered", (), {"filters": {"max_price": 9.5, "tags": ["a", "b c"]}, "x_trace_id": "t"},
     (Filters(max_price=9.5, tags=["a", "b c"]), "t")),
]


@pytest.mark.parametrize(("endpoint", "args", "kwargs", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_parameter_kind_arrives_as_sent(site: Site, endpoint: str, args: tuple[Any, ...],
                                             kwargs: dict[str, Any], expected: Any) -> None:
    router = routes(site)
    fn = next(r.endpoint for r in router.routes if r.endpoint.__name__ == endpoint)  # type: ignore[attr-defined]
    receipt = fn.delay(*args, **kwargs)
    assert receipt.name.startswith(QUEUE + "/tasks/")
    [(_name, value)] = site.received.wait_for(1)
    assert value == expected
    site.emu.wait_idle()
    # Answered 2xx the first time: nothing left in the queue.
    assert list(site.emu.tasks_client().list_tasks(parent=QUEUE)) == []


def test_query_string_and_headers_on_the_wire(site: Site) -> None:
    router = routes(site)
    by_name = {r.endpoint.__name__: r.endpoint for r in router.routes}  # type: ignore[attr-defined]
    client = site.emu.tasks_client()
    for fn, kwargs in [(by_name["listing"], {"tags": ["a", "b"]}),
                       (by_name["optional"], {"note": None}),
                       (by_name["header"], {"x_request_tag": "t"})]:
        receipt = fn.options(countdown=3600).delay(**kwargs)
        task = client.get_task(
            request={"name": receipt.name, "response_view": tasks_v2.Task.View.FULL})
        http = task.http_request
        if fn is by_name["listing"]:
            assert http.url == f"{site.url}/m/list?tags=a&tags=b"
        elif fn is by_name["optional"]:
            assert http.url == f"{site.url}/m/optional"  # not ?note=None
        else:
            assert http.headers["x-request-tag"] == "t"
        client.delete_task(name=receipt.name)


def test_call_site_errors_name_the_problem_and_send_nothing(site: Site) -> None:
    router = routes(site)
    by_name = {r.endpoint.__name__: r.endpoint for r in router.routes}  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        by_name["query"].delay(n=1, text="t", bogus=2)
    with pytest.raises(MissingParamError, match=r"missing required argument.*'text'"):
        by_name["query"].delay(n=1)
    with pytest.raises(WrongTypeError, match=r"argument 'n'.*valid integer"):
        by_name["query"].delay(n="many", text="t")
    with pytest.raises(TaskArgumentError, match=r"argument 'item'.*price"):
        by_name["body"].delay(item={"name": "no price"})
    with pytest.raises(TaskArgumentError,
                       match="argument 2 would be 'page', which FastAPI resolves"):
        by_name["depends"].delay("k", {"limit": 1}, "x")
    with pytest.raises(TaskArgumentError, match="unexpected keyword argument 'source'"):
        by_name["depends"].delay("k", source="x")
    with pytest.raises(TaskArgumentError, match="header 'x-request-tag' must be printable ASCII"):
        by_name["header"].delay(x_request_tag="é")
    with pytest.raises(BadMethodError, match="a GET route cannot take a body"):
        by_name["fetch"].delay(item={"name": "n", "price": 1})
    with pytest.raises(TaskArgumentError, match="header 'user-agent' is set by Cloud Tasks"):
        by_name["agent"].delay(user_agent="me")
    with pytest.raises(TaskArgumentError, match=r"'item_id' holds '/'.*\{item_id:path\}"):
        by_name["path"].delay("a/b", "r")
    with pytest.raises(TaskArgumentError, match="path parameter 'item_id' is empty"):
        by_name["path"].delay("", "r")
    with pytest.raises(TaskArgumentError, match="30-day limit"):
        by_name["get"].options(countdown=45 * 86400).delay(q="x")
    assert list(site.emu.tasks_client().list_tasks(parent=QUEUE)) == []


def test_options_and_builder_arguments_are_checked(site: Site) -> None:
    router = routes(site)
    get = next(r.endpoint for r in router.routes if r.endpoint.__name__ == "get")  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match=r"Unknown option.*for DelayOptions: eta"):
        get.options(eta=1)
    with pytest.raises(ValueError, match="countdown='soon'"):
        get.options(countdown="soon")
    with pytest.raises(TypeError, match="exactly one of base_url"):
        DelayedRouteBuilder(queue_path=QUEUE)
    with pytest.raises(TypeError, match="exactly one of base_url"):
        DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url, callback_base_url=site.url)
    with pytest.raises(ValueError, match="queue_path 'emails' is not projects"):
        DelayedRouteBuilder(queue_path="emails", base_url=site.url)
    with pytest.raises(ValueError, match="must be an http"):
        DelayedRouteBuilder(queue_path=QUEUE, base_url="api.example.com")


def test_countdown_task_id_and_duplicates(site: Site) -> None:
    router = routes(site)
    get = next(r.endpoint for r in router.routes if r.endpoint.__name__ == "get")  # type: ignore[attr-defined]
    before = datetime.now(UTC)
    receipt = get.options(countdown=600, task_id="report-42").delay(q="x")
    assert receipt.name == f"{QUEUE}/tasks/report-42"
    task = site.emu.tasks_client().get_task(name=receipt.name)
    eta = task.schedule_time
    assert before + timedelta(seconds=599) <= eta <= datetime.now(UTC) + timedelta(seconds=601)
    with pytest.raises(DuplicateTaskError):
        get.options(task_id="report-42").delay(q="y")
    assert site.received.calls == []


def test_hooks_and_default_options_shape_the_request(site: Site) -> None:
    token = tasks_v2.OidcToken(service_account_email="caller@p.iam.gserviceaccount.com",
                               audience="aud")
    hook = chained_hook(oidc_delayed_hook(token), deadline_delayed_hook(timedelta(minutes=5)))
    router = APIRouter(route_class=DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url,
                                                       pre_create_hook=hook))

    @router.post("/later")
    @task_default_options(countdown=900, task_create_timeout=5)
    def later(x: int) -> None: ...

    receipt = later.delay(x=1)  # type: ignore[attr-defined]
    task = site.emu.tasks_client().get_task(
        request={"name": receipt.name, "response_view": tasks_v2.Task.View.FULL})
    assert task.http_request.oidc_token.service_account_email == token.service_account_email
    assert task.http_request.oidc_token.audience == "aud"
    assert task.dispatch_deadline == timedelta(minutes=5)
    assert task.schedule_time > datetime.now(UTC) + timedelta(seconds=800)
    with pytest.raises(ValueError, match="outside the 0:00:15 to 0:30:00 that Cloud Tasks allows"):
        deadline_delayed_hook(timedelta(hours=1))


def test_a_delivery_past_its_expires_is_skipped_and_a_live_one_runs(site: Site) -> None:
    router = APIRouter(route_class=DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url))

    @router.post("/expiring/{n}")
    def expiring(n: int) -> None:
        site.received.record("expiring", n)

    site.api.include_router(router)
    past = expiring.options(expires=datetime.now(UTC) - timedelta(seconds=1))  # type: ignore[attr-defined]
    skipped = past.delay(1)
    expiring.options(expires=3600).delay(2)  # type: ignore[attr-defined]
    assert site.received.wait_for(1) == [("expiring", 2)]
    site.emu.wait_idle()
    assert site.emu.pending() == 0  # the expired one was answered 200, not retried
    assert site.received.calls == [("expiring", 2)]
    assert skipped.name.startswith(QUEUE)
    with pytest.raises(ValueError, match="expires='soon': give a number of seconds"):
        expiring.options(expires="soon")  # type: ignore[attr-defined]


def test_no_network_until_the_first_delay(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Refusing:
        """A client whose every call fails (reading its methods is no call)."""

        def __getattr__(self, name: str) -> Any:
            def call(*args: Any, **kwargs: Any) -> None:
                calls.append(name)
                raise AssertionError(f"network call {name} at registration")

            return call

    route_class = DelayedRouteBuilder(queue_path=QUEUE.replace("routes", "fresh"),
                                      base_url=site.url, client=Refusing())
    router = APIRouter(route_class=route_class)

    @router.post("/quiet")
    def quiet() -> None: ...

    site.api.include_router(router)
    scheduled = APIRouter(route_class=ScheduledRouteBuilder(
        location_path=LOCATION, base_url=site.url, client=Refusing()))

    @scheduled.post("/nightly")
    def nightly() -> None: ...

    site.api.include_router(scheduled)
    nightly.scheduler(name="nightly", schedule="0 3 * * *")  # type: ignore[attr-defined]
    assert calls == []
    # The default client is made on the first send too: the queue is created then, once.
    route_class = DelayedRouteBuilder(queue_path=QUEUE.replace("routes", "fresh"),
                                      base_url=site.url)
    router = APIRouter(route_class=route_class)

    @router.post("/made")
    def made() -> None:
        site.received.record("made", None)

    site.api.include_router(router)
    client = site.emu.tasks_client()
    assert [q.name for q in client.list_queues(parent="projects/p/locations/l")] == [QUEUE]
    made.delay()  # type: ignore[attr-defined]
    made.delay()  # type: ignore[attr-defined]
    assert site.received.wait_for(2) == [("made", None), ("made", None)]
    assert sorted(q.name for q in client.list_queues(parent="projects/p/locations/l")) == [
        QUEUE.replace("routes", "fresh"), QUEUE]


def test_transient_create_failures_are_retried(site: Site) -> None:
    router = routes(site)
    get = next(r.endpoint for r in router.routes if r.endpoint.__name__ == "get")  # type: ignore[attr-defined]
    site.emu.faults.fail_rpc("CreateTask", grpc.StatusCode.UNAVAILABLE, times=2)
    get.delay(q="again")
    assert site.received.wait_for(1) == [("get", "again")]


def test_cloud_tasks_headers_dependency(site: Site) -> None:
    router = APIRouter(route_class=DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url))

    @router.post("/who")
    def who(headers: Annotated[CloudTasksHeaders, Depends()]) -> None:
        site.received.record("who", (headers.queue_name, headers.task_name,
                                     headers.retry_count, headers.execution_count))

    site.api.include_router(router)
    receipt = who.options(task_id="t-7").delay()  # type: ignore[attr-defined]
    [(_, (queue, task, retries, executions))] = site.received.wait_for(1)
    assert (queue, task, retries, executions) == ("routes", "t-7", 0, 0)
    assert receipt.name.endswith("/t-7")


async def test_async_builder_awaits_delay(site: Site) -> None:
    made: list[Any] = []

    def factory() -> Any:
        made.append(1)
        return site.emu.async_tasks_client()

    route_class = AsyncDelayedRouteBuilder(queue_path=QUEUE, base_url=site.url, client=factory)
    router = APIRouter(route_class=route_class)

    @router.post("/async/{n}")
    async def handler(n: int, item: Item) -> None:
        site.received.record("async", (n, item))

    site.api.include_router(router)
    await handler.delay(3, item={"name": "a", "price": 1})  # type: ignore[attr-defined]
    await handler.options(countdown=1).delay(n=4, item=Item(name="b", price=2))  # type: ignore[attr-defined]
    calls = sorted(site.received.wait_for(2), key=lambda c: c[1][0])
    assert calls == [("async", (3, Item(name="a", price=1))),
                     ("async", (4, Item(name="b", price=2)))]
    assert made == [1]
