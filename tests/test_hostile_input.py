"""Hostile input to a deployed worker (``app.asgi_app()`` under uvicorn, verifying callers with
the emulator's tokens): bounded 422 answers, callers hanging up mid-body, bodies that are not
UTF-8, and ids that end in a newline."""

from __future__ import annotations

import ast
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from pydantic import BaseModel

from celery_gcp import Celery
from celery_gcp.emulator.oidc import TokenIssuer
from celery_gcp.exceptions import ImproperlyConfigured, MessageDecodeError
from celery_gcp.message import Message
from celery_gcp.platform import JOB_ID, LOCATION_PATH, QUEUE_ID, QUEUE_PATH, TASK_ID
from celery_gcp.testing import auth_headers, serve, trusted_issuer
from celery_gcp.transport.cloudtasks import task_id_for
from celery_gcp.worker.intake import MAX_BODY, MAX_DETAIL_BYTES, MAX_ERRORS, MAX_LOC, MAX_TEXT

from .shared_emulator import SharedEmulator

ACCOUNT = "tasks@proj.iam.gserviceaccount.com"
PACKAGE = Path(__file__).resolve().parents[1] / "celery_gcp"


class Node(BaseModel):
    """A tree: its errors' locations are as deep as the body."""

    value: int
    child: Node | None = None


@dataclass
class Served:
    """The served worker, the key it trusts, and what its tasks ran."""

    app: Celery
    issuer: TokenIssuer
    url: str
    ran: list[Any]

    def post(self, task: str, **kwargs: Any) -> httpx.Response:
        """A delivery of task ``h.{task}``, as Cloud Tasks makes it (with a valid token)."""
        path = f"/_tasks/h.{task}"
        headers = {"X-Celery-Task-Id": "t-1", "Content-Type": "application/json",
                   **auth_headers(self.app, self.issuer, path)}
        return httpx.post(self.url + path, headers=headers, timeout=30, **kwargs)


@pytest.fixture
def served() -> Iterator[Served]:
    app = Celery("h", task_auth="oidc", gcp_service_account=ACCOUNT)
    ran: list[Any] = []

    @app.task(name="h.total")
    def total(items: list[int]) -> int:
        ran.append(items)
        return sum(items)

    @app.task(name="h.count")
    def count(values: dict[str, int]) -> int:
        ran.append(values)
        return len(values)

    @app.task(name="h.depth")
    def depth(node: Node) -> None:
        ran.append(node)

    @app.task(name="h.echo")
    def echo(text: str) -> str:
        ran.append(text)
        return text

    issuer = trusted_issuer(app)
    with serve(app.asgi_app()) as url:
        app.conf.task_base_url = url
        yield Served(app, issuer, url, ran)


# -- 422 answers are bounded ---------------------------------------------------------------------


def test_huge_422_answer_is_bounded(served: Served) -> None:
    body = b'{"items": [' + b",".join([b'"a"'] * 262_000) + b"]}"
    assert len(body) <= MAX_BODY
    response = served.post("total", content=body)
    assert response.status_code == 422
    assert len(response.content) < 5_000  # FastAPI's own answer: 36 MB
    answer = response.json()
    assert answer["error_count"] == 262_000
    assert len(answer["detail"]) == MAX_ERRORS
    assert answer["detail"][0]["loc"] == ["body", "items", 0]
    assert answer["detail"][0]["type"] == "int_parsing"
    assert served.ran == []


def test_422_detail_of_long_keys_and_deep_locations_is_bounded(served: Served) -> None:
    long_key = served.post("count", json={"values": {"k" * 500_000: "x"}})
    assert long_key.status_code == 422
    assert len(long_key.content) < 1_000
    [error] = long_key.json()["detail"]
    assert error["loc"][:2] == ["body", "values"]
    assert len(error["loc"][2]) == MAX_TEXT
    # Keys that escape to 12 bytes a character: the errors listed stop at the byte budget.
    wide = served.post("count", json={"values": {f"{n}" + "\U0001f600" * 9_000: "x"
                                                 for n in range(MAX_ERRORS)}})
    assert wide.status_code == 422
    assert wide.json()["error_count"] == MAX_ERRORS
    assert 0 < len(wide.json()["detail"]) < MAX_ERRORS
    assert len(wide.content) < 2 * MAX_DETAIL_BYTES
    tree: dict[str, Any] = {"value": "bad"}
    for _ in range(300):
        tree = {"value": 1, "child": tree}
    deep = served.post("depth", json={"node": tree})
    assert deep.status_code == 422
    [error] = deep.json()["detail"]
    assert error["loc"][:4] == ["body", "node", "child", "child"]
    assert len(error["loc"]) == MAX_LOC
    assert served.ran == []


# -- a caller that hangs up mid-body -------------------------------------------------------------


class Records(logging.Handler):
    """Every record of the loggers it is attached to; ``wait_for(text, n)`` blocks (bounded)
    until ``n`` records hold ``text``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def holding(self, text: str) -> list[logging.LogRecord]:
        return [r for r in self.records if text in r.getMessage()]

    def wait_for(self, text: str, count: int, timeout: float = 10.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.holding(text)) >= count, timeout):
                raise AssertionError(f"expected {count} records with {text!r}: "
                                     f"{[r.getMessage() for r in self.records]}")


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    # uvicorn logs an app's exception on "uvicorn.error", which does not reach the root logger.
    loggers = [logging.getLogger(name) for name in ("celery_gcp", "uvicorn.error", "uvicorn")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_caller_hanging_up_mid_body_is_one_info_line(records: Records) -> None:
    app = Celery("h", task_auth="oidc", gcp_service_account=ACCOUNT)
    ran: list[int] = []

    @app.task(name="h.add")
    def add(x: int, y: int) -> None:
        ran.append(x + y)

    issuer = trusted_issuer(app)
    with serve(app.asgi_app()) as url:
        app.conf.task_base_url = url
        host, port = url.removeprefix("http://").split(":")
        token = auth_headers(app, issuer, "/_tasks/h.add")["Authorization"]
        for _ in range(3):
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(b"POST /_tasks/h.add HTTP/1.1\r\nHost: worker\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 1000\r\n"
                             b"X-Celery-Task-Id: t-1\r\nAuthorization: " + token.encode()
                             + b'\r\n\r\n{"x": 1, ')
        records.wait_for("hung up", 3)
    # The server has stopped: every request it took is done, and logged.
    [line, *_] = hung_up = records.holding("hung up")
    assert len(hung_up) == 3
    assert line.levelno == logging.INFO
    assert line.getMessage().startswith("POST /_tasks/h.add from 127.0.0.1: the caller hung up")
    assert [r.getMessage() for r in records.records if r.levelno >= logging.WARNING] == []
    assert not [r for r in records.records if r.exc_info]
    assert ran == []


# -- JSON bodies must be UTF-8 -------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32",
                                      "utf-32-le", "utf-8-sig", "latin-1"])
def test_non_utf8_json_is_400(served: Served, encoding: str) -> None:
    body = '{"text": "caf\u00e9"}'.encode(encoding)
    response = served.post("echo", content=body)
    assert response.status_code == 400, response.text
    assert "not UTF-8" in response.json()["detail"]
    assert served.ran == []
    utf8 = served.post("echo", content='{"text": "caf\u00e9"}'.encode())
    assert utf8.status_code == 200
    assert served.ran == ["caf\u00e9"]


# -- ids and names are matched whole: a trailing newline is not part of one ----------------------


@pytest.mark.parametrize(("pattern", "valid"), [
    (TASK_ID, "t-1"), (QUEUE_ID, "celery"), (JOB_ID, "job_1"),
    (LOCATION_PATH, "projects/p/locations/l"), (QUEUE_PATH, "projects/p/locations/l/queues/q"),
])
def test_platform_id_patterns_refuse_a_trailing_newline(pattern: Any, valid: str) -> None:
    assert pattern.match(valid)
    assert not pattern.match(valid + "\n")


def test_library_ids_with_a_trailing_newline_are_refused_or_replaced() -> None:
    message = Message(task="h.add", id="t-1\n", body=b"{}")
    cloud_id = task_id_for(message)
    assert cloud_id.startswith("h")  # a hash of the id, not the id itself
    assert TASK_ID.match(cloud_id)
    with pytest.raises(ImproperlyConfigured, match="cannot be an endpoint path segment"):
        Celery("h").task(name="h.add\n")(lambda: None)
    with pytest.raises(MessageDecodeError, match="non-negative integer"):
        Message.from_http("h.add", {"x-celery-task-id": "t-1", "x-celery-retries": "1\n"}, b"")


def test_no_pattern_in_the_package_ends_with_a_dollar() -> None:
    """``$`` also matches before a final newline: patterns end with ``\\Z`` (or are used with
    ``fullmatch``)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                    and node.args):
                continue
            pattern = node.args[0]
            last = pattern.values[-1] if isinstance(pattern, ast.JoinedStr) else pattern
            if isinstance(last, ast.Constant) and str(last.value).endswith("$"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


@pytest.fixture
def emu(module_emulator: SharedEmulator) -> Iterator[Any]:
    yield module_emulator.begin()
    module_emulator.reset()


def test_emulator_names_with_a_trailing_newline_are_refused(emu: Any) -> None:
    tasks, scheduler, location = emu.tasks_client(), emu.scheduler_client(), emu.location
    queue = tasks.create_queue(parent=location, queue={"name": f"{location}/queues/names"})
    job = {"schedule": "* * * * *", "http_target": {"uri": "http://127.0.0.1:1/"}}
    task = {"http_request": {"url": "http://127.0.0.1:1/", "body": b"{}"}}
    calls = [
        lambda: tasks.create_queue(parent=location,
                                   queue={"name": f"{location}/queues/q\n"}),
        lambda: tasks.create_queue(parent=location + "\n",
                                   queue={"name": f"{location}\n/queues/q"}),
        lambda: tasks.create_task(parent=queue.name,
                                  task={**task, "name": f"{queue.name}/tasks/t-1\n"}),
        lambda: scheduler.create_job(parent=location,
                                     job={**job, "name": f"{location}/jobs/j\n"}),
        lambda: scheduler.list_jobs(parent=location + "\n"),
    ]
    for call in calls:
        with pytest.raises(exceptions.InvalidArgument, match="invalid"):
            call()
    assert [t.name for t in tasks.list_tasks(parent=queue.name)] == []
