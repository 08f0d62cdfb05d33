"""The shape of the send path and the delivery pipeline, checked from the outside.

A warm ``.delay()`` touches few modules (the app, its settings and the router are read once per
version of the settings, not per call); a transport works with no app at all; every send and
run passes the app's layers in order; route builders' messages come from the same builder as
tasks'; nothing writes Starlette's private request attributes.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from google.cloud import tasks_v2

import celery_gcp
from celery_gcp import Celery, group
from celery_gcp.emulator import Emulator
from celery_gcp.exceptions import ImproperlyConfigured
from celery_gcp.fastapi import DelayedRouteBuilder, queue_path
from celery_gcp.layers import Layer
from celery_gcp.message import Destination, Message
from celery_gcp.testing import serve
from celery_gcp.transport.cloudtasks import CloudTasksTransport

PACKAGE = Path(celery_gcp.__file__).parent
QUEUE = "projects/p/locations/l/queues/arch"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as emu:
        for name, value in emu.environ().items():
            monkeypatch.setenv(name, value)
        emu.tasks_client().create_queue(parent="projects/p/locations/l",
                                        queue={"name": QUEUE})
        yield emu


def traced_files(call: Any) -> list[str]:
    """The package modules (outside the emulator) entered by ``call()``, in order of entry,
    one entry per switch between modules."""
    switches: list[str] = []
    root = str(PACKAGE)

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            name = frame.f_code.co_filename
            if name.startswith(root) and f"{os.sep}emulator{os.sep}" not in name:
                module = os.path.relpath(name, root)
                if not switches or switches[-1] != module:
                    switches.append(module)

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return switches


def test_a_warm_delay_touches_at_most_six_modules(emulator: Emulator) -> None:
    app = Celery("arch", gcp_project="p", gcp_location="l", task_default_queue="arch",
                 task_base_url="http://127.0.0.1:9")

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    add.delay(1, 2)  # cold: settings loaded, client made, destination resolved
    switches = traced_files(lambda: add.delay(2, 3))
    assert len(set(switches)) <= 6, switches
    # Neither the app, its settings nor the queue router is entered on a warm send.
    assert not {"app.py", "config.py", "routing.py"} & set(switches), switches
    [task] = [t for t in emulator.tasks_client().list_tasks(
        request={"parent": QUEUE, "response_view": tasks_v2.Task.View.FULL})
              if b'"x":2' in t.http_request.body]
    assert task.http_request.url == f"http://127.0.0.1:9/_tasks/{add.name}"


def test_a_transport_sends_an_addressed_message_with_no_app(emulator: Emulator) -> None:
    transport = CloudTasksTransport(client=emulator.tasks_client())
    message = Message(task="anything", id="no-app-1", body=b'{"a":1}', destination=Destination(
        queue_path=QUEUE, url="http://127.0.0.1:9/x", method="PUT", deadline=30.0,
        service_account="sa@p.iam.gserviceaccount.com", audience="http://127.0.0.1:9/x"))
    receipt = transport.send(message)
    task = emulator.tasks_client().get_task(
        request={"name": receipt.name, "response_view": tasks_v2.Task.View.FULL})
    assert receipt.name == f"{QUEUE}/tasks/no-app-1"
    assert task.http_request.url == "http://127.0.0.1:9/x"
    assert task.http_request.http_method.name == "PUT"
    assert task.http_request.body == b'{"a":1}'
    assert task.dispatch_deadline.total_seconds() == 30
    assert task.http_request.oidc_token.service_account_email == "sa@p.iam.gserviceaccount.com"
    with pytest.raises(ImproperlyConfigured, match="has no destination: send it through"):
        transport.send(Message(task="anything", id="no-app-2", body=b"{}"))


def test_no_transport_module_reads_an_app() -> None:
    for path in (PACKAGE / "transport").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module}
        assert not {"app", "..app", "config", "sending"} & imported, path.name
        attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert not {"conf", "app"} & attributes, path.name


def test_nothing_writes_starlettes_private_request_attributes() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    assert not (isinstance(target, ast.Attribute)
                                and target.attr in {"_body", "_json", "_form"}), (
                        f"{path.relative_to(PACKAGE)}:{node.lineno}")


def test_modules_and_classes_stay_small() -> None:
    # Small modules with one job each: at most 400 lines a module, 250 a class.
    too_big = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        where = path.relative_to(PACKAGE)
        if len(text.splitlines()) > 400:
            too_big.append(f"{where}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > 250:
                    too_big.append(f"{where}: class {node.name}, {size} lines")
    assert too_big == []


class Recorder(Layer):
    """Records each step it takes part in."""

    def __init__(self, name: str, steps: list[str]) -> None:
        self.name = name
        self.steps = steps

    def before_send(self, message: Message) -> None:
        self.steps.append(f"{self.name}:before_send:{message.task}")

    def after_send(self, message: Message, receipt: Any) -> None:
        self.steps.append(f"{self.name}:after_send:{message.task}")

    def received(self, run: Any) -> None:
        self.steps.append(f"{self.name}:received")

    def before_run(self, run: Any) -> None:
        self.steps.append(f"{self.name}:before_run")

    def succeeded(self, run: Any, retval: Any) -> None:
        self.steps.append(f"{self.name}:succeeded:{retval}")

    def failed(self, run: Any, exc: BaseException, einfo: Any) -> None:
        self.steps.append(f"{self.name}:failed:{type(exc).__name__}")

    def after_run(self, run: Any, result: Any) -> None:
        self.steps.append(f"{self.name}:after_run:{result.state}")


def test_layers_take_every_step_in_order_on_the_worker(app: Celery, worker: Any) -> None:
    steps: list[str] = []
    app.layers.add(Recorder("a", steps))
    app.layers.add(Recorder("b", steps))

    @app.task(name="proj.double")
    def double(x: int) -> int:
        return 2 * x

    @app.task(name="proj.fail")
    def fail() -> None:
        raise KeyError("no")

    double.delay(21)
    fail.delay()
    assert steps == ["a:before_send:proj.double", "b:before_send:proj.double",
                     "a:after_send:proj.double", "b:after_send:proj.double",
                     "a:before_send:proj.fail", "b:before_send:proj.fail",
                     "a:after_send:proj.fail", "b:after_send:proj.fail"]
    steps.clear()
    with worker(app) as w:
        assert [r.status_code for r in w.deliver_sent()] == [200, 200]
    assert steps == ["a:received", "b:received", "a:before_run", "b:before_run",
                     "a:succeeded:42", "b:succeeded:42", "a:after_run:SUCCESS",
                     "b:after_run:SUCCESS",
                     "a:received", "b:received", "a:before_run", "b:before_run",
                     "a:failed:KeyError", "b:failed:KeyError", "a:after_run:FAILURE",
                     "b:after_run:FAILURE"]


class Stamp(Layer):
    """Adds a header to every message it sends (as a tracing layer adds its context)."""

    def before_send(self, message: Message) -> Message:
        return replace(message, headers={**message.headers, "stamp": f"s-{message.task}"})


def test_a_layer_may_send_a_changed_message(app: Celery, worker: Any) -> None:
    app.layers.add(Stamp())
    seen: list[Any] = []

    @app.task(bind=True, name="proj.stamped")
    def stamped(self: Any) -> None:
        seen.append(self.request.headers)

    stamped.delay()
    group_result = group(stamped.s(), stamped.s()).apply_async()
    assert len(group_result.results) == 2
    with worker(app) as w:
        assert [r.status_code for r in w.deliver_sent()] == [200, 200, 200]
    assert [headers["stamp"] for headers in seen] == ["s-proj.stamped"] * 3


def test_a_removed_layer_takes_no_more_steps(app: Celery) -> None:
    steps: list[str] = []
    layer = Recorder("a", steps)
    app.layers.add(layer)

    @app.task(name="proj.noop")
    def noop() -> None:
        return None

    noop.delay()
    app.layers.remove(layer)
    noop.delay()
    assert steps == ["a:before_send:proj.noop", "a:after_send:proj.noop"]


def test_a_route_builders_message_gets_parent_and_root_ids_inside_a_task() -> None:
    app = Celery("arch", task_always_eager=True)
    router = APIRouter(route_class=DelayedRouteBuilder(
        queue_path=queue_path(project="p", location="l", queue="arch"),
        base_url="http://127.0.0.1:9"))

    @router.post("/hello")
    def hello() -> None: ...

    @app.task(bind=True, name="arch.parent")
    def parent(self: Any) -> tuple[str | None, str | None, str | None]:
        message = hello.options().message((), {})  # type: ignore[attr-defined]
        return message.parent_id, message.root_id, self.request.id

    parent_id, root_id, own_id = parent.apply(task_id="the-parent").get()
    assert (parent_id, root_id, own_id) == ("the-parent", "the-parent", "the-parent")
    outside = hello.options().message((), {})  # type: ignore[attr-defined]
    assert outside.parent_id is None
    assert outside.root_id == outside.id


def test_task_routes_and_task_endpoints_share_the_delivery_pipeline(app: Celery) -> None:
    # A bad caller is refused the same way by both kinds of endpoint: the intake step.
    app.conf.task_base_url = "http://testserver"
    router = APIRouter(route_class=app.TaskRoute)

    @router.post("/orders/{order_id}")
    def charge(order_id: int) -> int:
        return order_id

    @app.task(name="proj.plain")
    def plain() -> None: ...

    api = FastAPI()
    api.include_router(router)
    api.include_router(app.router)
    headers = {"X-Celery-Task-Id": "t1", "Content-Type": "text/plain"}
    with serve(api) as url, httpx.Client(base_url=url) as client:
        for path in ("/orders/7", "/_tasks/proj.plain"):
            refused = client.post(path, content=b"x", headers=headers)
            assert refused.status_code == 415, path
            assert "send application/json" in refused.json()["detail"]
        assert client.post("/orders/7").json() == 7  # a plain HTTP call of the route
