"""Where a route builder's task is called back: the base URL and the path the app serves the
route at, for every way of serving a router (included, with prefixes, nested, mounted), with
a base URL that is the app's origin, has a path of its own (a proxy's), or names the prefixes
as fastapi-gcp-tasks asks. Each case goes through the emulator into the served app over HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from google.cloud import tasks_v2

from celery_gcp.fastapi import DelayedRouteBuilder, ScheduledRouteBuilder
from celery_gcp.testing import serve

from .conftest import LOCATION, QUEUE, Site

Scope = MutableMapping[str, Any]
ASGI = Callable[[Scope, Any, Any], Awaitable[None]]


def stripping_proxy(app: ASGI, prefix: str) -> ASGI:
    """``app`` behind a reverse proxy that serves it under ``prefix`` (and strips it)."""

    async def proxy(scope: Scope, receive: Any, send: Any) -> None:
        path = scope["path"]
        if not path.startswith(prefix + "/"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not behind the proxy"})
            return
        inner = dict(scope, path=path[len(prefix):], raw_path=path[len(prefix):].encode())
        await app(inner, receive, send)

    return proxy


#: How the task router (prefix /delayed) is served: the prefixes above it.
TOPOLOGIES: dict[str, tuple[str, ...]] = {
    "included": (),
    "included with a prefix": ("/tasks",),
    "nested includes": ("/api", "/mid/in"),
    "mounted": ("/_fct",),
    "mounted, included with a prefix": ("/_fct", "/v1"),
    "mounted, nested includes": ("/_fct", "/api", "/mid/in"),
}


def serve_router(api: FastAPI, router: APIRouter, topology: str) -> None:
    """Serve ``router`` from ``api`` as ``topology`` says."""
    if topology == "included":
        api.include_router(router)
        return
    if topology == "included with a prefix":
        api.include_router(router, prefix="/tasks")
        return
    task_app = FastAPI() if topology.startswith("mounted") else api
    if topology.endswith("nested includes"):
        mid = APIRouter(prefix="/mid")
        mid.include_router(router, prefix="/in")
        task_app.include_router(mid, prefix="/api")
    elif topology.endswith("with a prefix"):
        task_app.include_router(router, prefix="/v1")
    else:
        task_app.include_router(router)
    if task_app is not api:
        api.mount("/_fct", task_app)


@contextmanager
def served(site: Site, behind: str) -> Iterator[tuple[FastAPI, str]]:
    """A new app and the URL it is reached at: its server's origin, or a proxy's path."""
    api = FastAPI()
    if behind == "origin":
        with serve(api) as url:
            yield api, url
    else:
        with serve(stripping_proxy(api, "/edge")) as url:
            yield api, url + "/edge"


def base_url_for(app_url: str, prefixes: tuple[str, ...], naming: str) -> str:
    """The base URL given: the app's URL, it with the first prefix, or with every prefix."""
    if naming == "the app":
        return app_url
    return app_url + "".join(prefixes[:1] if naming == "the outer prefix" else prefixes)


def assert_called_back(site: Site, endpoint: Any, url: str, **kwargs: Any) -> None:
    """A task of ``endpoint`` goes to ``url``, and a delivery of it runs the endpoint."""
    later = endpoint.options(countdown=3600).delay(**kwargs)
    task = site.emu.tasks_client().get_task(
        request={"name": later.name, "response_view": tasks_v2.Task.View.FULL})
    assert task.http_request.url == url
    site.emu.tasks_client().delete_task(name=later.name)
    endpoint.delay(**kwargs)
    assert site.received.wait_for(1) == [(endpoint.__name__, kwargs.get("n"))]


CASES = [(topology, naming, behind)
         for topology, prefixes in TOPOLOGIES.items()
         for naming in (["the app", "the outer prefix", "every prefix"] if len(prefixes) > 1
                        else ["the app", "every prefix"] if prefixes else ["the app"])
         for behind in ("origin", "proxy")]


@pytest.mark.parametrize(("topology", "naming", "behind"), CASES,
                         ids=[f"{t}-base names {n}-{b}" for t, n, b in CASES])
def test_task_url_for_every_mount_and_include(site: Site, topology: str, naming: str,
                                              behind: str) -> None:
    prefixes = TOPOLOGIES[topology]
    with served(site, behind) as (api, app_url):
        router = APIRouter(route_class=DelayedRouteBuilder(
            queue_path=QUEUE, callback_base_url=base_url_for(app_url, prefixes, naming)),
            prefix="/delayed")

        @router.post("/hello/{n}")
        def hello(n: int) -> None:
            site.received.record("hello", n)

        serve_router(api, router, topology)
        assert_called_back(site, hello, f"{app_url}{''.join(prefixes)}/delayed/hello/5", n=5)


def test_mounted_task_app_url_has_prefix_once(site: Site) -> None:
    """fastapi-gcp-tasks' own layout: the task app mounted under /_fct, named in the base."""
    router = APIRouter(route_class=DelayedRouteBuilder(
        queue_path=QUEUE, callback_base_url=f"{site.url}/_fct"), prefix="/delayed")

    @router.post("/hello")
    def hello() -> None:
        site.received.record("hello", None)

    serve_router(site.api, router, "mounted")
    assert_called_back(site, hello, f"{site.url}/_fct/delayed/hello")


def test_scheduled_job_url_has_the_mount_prefix_once(site: Site) -> None:
    router = APIRouter(route_class=ScheduledRouteBuilder(
        location_path=LOCATION, callback_base_url=f"{site.url}/_fct"), prefix="/jobs")

    @router.post("/sweep")
    def sweep() -> None:
        site.received.record("sweep", None)

    serve_router(site.api, router, "mounted, included with a prefix")  # under /_fct/v1
    job = sweep.scheduler(name="sweep", schedule="0 3 * * *").schedule()  # type: ignore[attr-defined]
    assert job.http_target.uri == f"{site.url}/_fct/v1/jobs/sweep"
    site.emu.scheduler_client().run_job(name=job.name)
    assert site.received.wait_for(1) == [("sweep", None)]


def test_nested_router_prefixes_give_the_full_path(site: Site) -> None:
    route_class = DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url)
    inner = APIRouter(route_class=route_class, prefix="/inner")
    middle = APIRouter(prefix="/mid")

    @inner.post("/leaf/{n}")
    def leaf(n: int) -> None:
        site.received.record("leaf", n)

    middle.include_router(inner)
    site.api.include_router(middle, prefix="/api")
    receipt = leaf.delay(5)  # type: ignore[attr-defined]
    assert site.received.wait_for(1) == [("leaf", 5)]
    assert receipt.name.startswith(QUEUE)
    later = leaf.options(countdown=3600).delay(6)  # type: ignore[attr-defined]
    task = site.emu.tasks_client().get_task(
        request={"name": later.name, "response_view": tasks_v2.Task.View.FULL})
    assert task.http_request.url == f"{site.url}/api/mid/inner/leaf/6"


def test_a_mounted_app_gives_its_mount_path(site: Site) -> None:
    route_class = DelayedRouteBuilder(queue_path=QUEUE, base_url=site.url)
    router = APIRouter(route_class=route_class)

    @router.post("/hook/{n}")
    def hook(n: int) -> None:
        site.received.record("hook", n)

    sub = FastAPI()
    sub.include_router(router, prefix="/in")
    site.api.mount("/v1", sub)
    hook.delay(2)  # type: ignore[attr-defined]
    assert site.received.wait_for(1) == [("hook", 2)]


class _LazyProxy:
    """Like Celery's PromiseProxy: asking for its class evaluates what it wraps."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("evaluated")


def test_finding_where_a_route_is_served_never_evaluates_a_lazy_proxy() -> None:
    from fastapi import APIRouter, FastAPI

    from celery_gcp.fastapi import DelayedRouteBuilder
    from celery_gcp.fastapi.builtroute import served_prefixes

    proxy = _LazyProxy()  # alive while the apps are looked for
    router = APIRouter(prefix="/delayed", route_class=DelayedRouteBuilder(
        base_url="http://h", queue_path="projects/p/locations/l/queues/q"))

    @router.post("/lazy")
    def lazy() -> None: ...

    api = FastAPI()
    api.mount("/_fct", FastAPI())
    api.include_router(router)
    [route] = [r for r in router.routes if getattr(r, "path", "") == "/delayed/lazy"]
    assert served_prefixes(route) == [()]
    assert proxy is not None
