"""The worker over real HTTP (uvicorn): the outcome table, self.request, retries, hooks, Depends."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from fastapi import Depends, Header, Request
from pydantic import BaseModel

from celery_gcp import Celery, Task
from celery_gcp import signals as sig
from celery_gcp.exceptions import Ignore, MaxRetriesExceededError, Reject, TransportError
from celery_gcp.message import Message
from celery_gcp.transport import MemoryTransport, Receipt, SendOptions, Transport


def test_success_returns_200_with_the_result(app: Celery, worker: Any) -> None:
    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    add.delay(2, 3)
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert response.status_code == 200
    assert response.json()["state"] == "SUCCESS"
    assert response.json()["result"] == 5


def test_request_context(app: Celery, worker: Any) -> None:
    seen: dict[str, Any] = {}

    @app.task(bind=True, name="proj.inspect")
    def inspect_request(self: Task[Any, Any], x: int, *, label: str = "l") -> None:
        r = self.request
        seen.update(id=r.id, task=r.task, args=r.args, kwargs=r.kwargs, retries=r.retries,
                    is_eager=r.is_eager, called_directly=r.called_directly, eta=r.eta,
                    expires=r.expires, headers=r.headers, root_id=r.root_id,
                    parent_id=r.parent_id, delivery_info=r.delivery_info,
                    cloudtasks=r.cloudtasks, hostname=r.hostname)

    eta = datetime(2030, 1, 1, tzinfo=UTC)
    expires = datetime.now(UTC) + timedelta(hours=1)
    inspect_request.apply_async((7,), {"label": "x"}, task_id="t-1", eta=eta, expires=expires,
                                headers={"tenant": "acme"}, queue="high_priority")
    [message] = app.transport.pop()  # type: ignore[attr-defined]
    platform = {
        "X-CloudTasks-QueueName": "high-priority", "X-CloudTasks-TaskName": "t-1",
        "X-CloudTasks-TaskRetryCount": "2", "X-CloudTasks-TaskExecutionCount": "1",
        "X-CloudTasks-TaskETA": "1893456000.5", "X-CloudTasks-TaskRetryReason": "HTTP 503",
        "X-CloudTasks-TaskPreviousResponse": "503",
    }
    with worker(app) as w:
        response = w.post("/_tasks/proj.inspect", content=message.body,
                          headers={**message.http_headers(), **platform})
    assert response.status_code == 200
    assert seen["id"] == "t-1"
    assert seen["task"] == "proj.inspect"
    assert seen["args"] == (7,)
    assert seen["kwargs"] == {"label": "x"}
    assert seen["retries"] == 0
    assert seen["is_eager"] is False
    assert seen["called_directly"] is False
    assert seen["eta"] == eta
    assert seen["expires"] == expires
    assert seen["headers"] == {"tenant": "acme"}
    assert seen["root_id"] == "t-1"
    assert seen["parent_id"] is None
    assert seen["delivery_info"]["routing_key"] == "high_priority"
    assert seen["delivery_info"]["redelivered"] is True
    ct = seen["cloudtasks"]
    assert (ct.queue_name, ct.task_name, ct.retry_count, ct.execution_count) == (
        "high-priority", "t-1", 2, 1)
    assert ct.eta == datetime.fromtimestamp(1893456000.5, UTC)
    assert (ct.retry_reason, ct.previous_response) == ("HTTP 503", "503")
    assert seen["hostname"] == f"celery@{socket.gethostname()}"  # Celery's node name


def test_retry_sends_a_new_message_with_the_same_id(app: Celery, worker: Any) -> None:
    runs: list[int] = []

    @app.task(bind=True, name="proj.flaky")
    def flaky(self: Task[Any, Any], n: int) -> str:
        runs.append(self.request.retries)
        if self.request.retries < 2:
            raise self.retry(countdown=30)
        return "done"

    result = flaky.apply_async((1,), queue="q1", headers={"h": 1})
    with worker(app) as w:
        [first] = app.transport.pop()  # type: ignore[attr-defined]
        before = datetime.now(UTC)
        response = w.deliver(first)
        assert response.status_code == 200
        assert response.json()["state"] == "RETRY"
        [retry] = app.transport.pop()  # type: ignore[attr-defined]
        assert retry.id == result.id
        assert retry.retries == 1
        assert retry.queue == "q1"
        assert retry.headers == {"h": 1}
        assert retry.root_id == result.id
        assert retry.parent_id is None
        assert json.loads(retry.body) == {"n": 1}
        assert before + timedelta(seconds=30) <= retry.eta <= datetime.now(UTC) + timedelta(
            seconds=30)
        responses = [w.deliver(retry), *w.deliver_sent()]
    assert [r.json()["state"] for r in responses] == ["RETRY", "SUCCESS"]
    assert runs == [0, 1, 2]


def test_retry_defaults_args_override_and_limits(app: Celery, worker: Any) -> None:
    @app.task(bind=True, name="proj.r", max_retries=1)
    def r(self: Task[Any, Any], n: int) -> None:
        raise self.retry(args=(n + 1,))

    r.delay(1)
    with worker(app) as w:
        before = datetime.now(UTC)
        first = w.deliver(app.transport.pop()[0])  # type: ignore[attr-defined]
        after = datetime.now(UTC)
        [retry] = app.transport.pop()  # type: ignore[attr-defined]
        last = w.deliver(retry)
    assert first.json()["state"] == "RETRY"
    # default_retry_delay is 180 s; the new args replace the old ones.
    # Bounded by the clock on both sides of the run: exact on a loaded machine too.
    assert before + timedelta(seconds=180) <= retry.eta <= after + timedelta(seconds=180)
    assert json.loads(retry.body) == {"n": 2}
    assert last.json()["state"] == "FAILURE"
    assert "MaxRetriesExceededError" in last.json()["error"]
    assert "Can't retry proj.r" in last.json()["error"]
    assert app.transport.sent == []  # type: ignore[attr-defined]


def test_retry_with_exc_raises_it_when_exhausted(app: Celery, worker: Any) -> None:
    @app.task(bind=True, name="proj.exc")
    def t(self: Task[Any, Any]) -> None:
        raise self.retry(exc=KeyError("gone"), countdown=1, max_retries=0)

    t.delay()
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert response.json()["state"] == "FAILURE"
    assert "KeyError" in response.json()["error"]


class FailingTransport(Transport):
    """Failure injection: every send fails."""

    addressed = False  # it fails before any address would matter

    def send(self, message: Message, options: SendOptions | None = None) -> Receipt:
        raise TransportError("Cloud Tasks is unavailable")


def test_retry_whose_send_fails_answers_503(app: Celery, worker: Any) -> None:
    @app.task(bind=True, name="proj.r503")
    def t(self: Task[Any, Any]) -> None:
        raise self.retry(countdown=1)

    t.delay()
    [message] = app.transport.pop()  # type: ignore[attr-defined]
    app.transport = FailingTransport()
    with worker(app) as w:
        response = w.deliver(message)
    assert response.status_code == 503
    assert response.json()["state"] == "REJECTED"


@pytest.mark.parametrize(("acks", "status"), [(True, 200), (False, 500)])
def test_failure_status_follows_acks_on_failure_or_timeout(
        app: Celery, worker: Any, acks: bool, status: int) -> None:
    failures: list[Any] = []

    class Base(Task[Any, Any]):
        def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                       einfo: Any) -> None:
            failures.append((type(exc), task_id, einfo.traceback))

    @app.task(name="proj.boom", base=Base, acks_on_failure_or_timeout=acks)
    def boom() -> None:
        raise ValueError("boom")

    result = boom.delay()
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert response.status_code == status
    assert response.json()["state"] == "FAILURE"
    assert failures[0][:2] == (ValueError, result.id)
    assert "ValueError: boom" in failures[0][2]


def test_app_setting_for_acks_on_failure(app: Celery, worker: Any) -> None:
    app.conf.task_acks_on_failure_or_timeout = False

    @app.task(name="proj.boom2")
    def boom() -> None:
        raise ValueError("boom")

    boom.delay()
    with worker(app) as w:
        assert w.deliver_sent()[0].status_code == 500


@pytest.mark.parametrize(("exc", "status", "state"), [
    (Reject("bad", requeue=True), 503, "REJECTED"),
    (Reject("bad", requeue=False), 200, "IGNORED"),
    (Ignore(), 200, "IGNORED"),
])
def test_predicates(app: Celery, worker: Any, exc: Exception, status: int, state: str) -> None:
    @app.task(name="proj.pred")
    def t() -> None:
        raise exc

    t.delay()
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert (response.status_code, response.json()["state"]) == (status, state)


def test_expired_task_is_skipped(app: Celery, worker: Any, receive: Any) -> None:
    revoked = receive(sig.task_revoked)
    runs: list[int] = []

    @app.task(name="proj.late")
    def late() -> None:
        runs.append(1)

    late.apply_async(expires=datetime.now(UTC) - timedelta(seconds=1))
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert (response.status_code, response.json()["state"]) == (200, "REVOKED")
    assert runs == []
    assert revoked[0]["expired"] is True


def test_invalid_body_is_422_and_never_runs(app: Celery, worker: Any) -> None:
    runs: list[int] = []

    @app.task(name="proj.typed")
    def typed(x: int) -> None:
        runs.append(x)

    with worker(app) as w:
        response = w.post("/_tasks/proj.typed", json={"x": "not-int"},
                          headers={"X-Celery-Task-Id": "a"})
        missing = w.post("/_tasks/proj.typed", json={}, headers={"X-Celery-Task-Id": "a"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "x"]
    assert missing.status_code == 422
    assert runs == []


def test_unknown_task_is_404(app: Celery, worker: Any, receive: Any) -> None:
    unknown = receive(sig.task_unknown)

    @app.task(name="proj.known")
    def known() -> None: ...

    with worker(app) as w:
        response = w.post("/_tasks/proj.unknown", json={}, headers={"X-Celery-Task-Id": "a"})
        nested = w.post("/_tasks/a/b/c", json={})
    assert response.status_code == 404
    assert "unknown task 'proj.unknown'" in response.json()["detail"]
    assert nested.status_code == 404
    assert unknown[0]["name"] == "proj.unknown"


def test_malformed_metadata_is_400_and_never_runs(app: Celery, worker: Any) -> None:
    runs: list[int] = []

    @app.task(name="proj.meta")
    def meta() -> None:
        runs.append(1)

    with worker(app) as w:
        bad = w.post("/_tasks/proj.meta", json={},
                     headers={"X-Celery-Task-Id": "a", "X-Celery-Retries": "-1"})
        no_id = w.post("/_tasks/proj.meta", json={})
    assert bad.status_code == 400
    assert "X-Celery-Retries" in bad.json()["detail"]
    assert no_id.status_code == 400
    assert runs == []


@pytest.mark.parametrize(("backoff", "expected"), [(True, [1, 2, 4, 8]), (2, [2, 4, 8, 16])])
def test_autoretry_backoff_countdowns(app: Celery, worker: Any, backoff: Any,
                                      expected: list[int]) -> None:
    runs: list[int] = []

    @app.task(bind=True, name="proj.auto", autoretry_for=(ConnectionError,),
              retry_backoff=backoff, retry_jitter=False, max_retries=4)
    def auto(self: Task[Any, Any]) -> None:
        runs.append(self.request.retries)
        raise ConnectionError("down")

    auto.delay()
    countdowns = []
    with worker(app) as w:
        while app.transport.sent:  # type: ignore[attr-defined]
            [message] = app.transport.pop()  # type: ignore[attr-defined]
            before = datetime.now(UTC)
            response = w.deliver(message)
            for retry in app.transport.sent:  # type: ignore[attr-defined]
                countdowns.append(round((retry.eta - before).total_seconds()))
    assert countdowns == expected
    assert runs == [0, 1, 2, 3, 4]
    assert response.json()["state"] == "FAILURE"
    assert "ConnectionError" in response.json()["error"]


def test_autoretry_max_retries_3_runs_the_body_4_times(app: Celery, worker: Any) -> None:
    runs: list[int] = []

    @app.task(name="proj.auto3", autoretry_for=(KeyError,), max_retries=3)
    def auto() -> None:
        runs.append(1)
        raise KeyError("k")

    auto.delay()
    with worker(app) as w:
        responses = w.deliver_sent()
    assert len(runs) == 4
    assert [r.json()["state"] for r in responses] == ["RETRY"] * 3 + ["FAILURE"]


def test_autoretry_skips_dont_autoretry_for_and_uses_retry_kwargs(app: Celery,
                                                                 worker: Any) -> None:
    @app.task(name="proj.dont", autoretry_for=(LookupError,), dont_autoretry_for=(KeyError,))
    def dont() -> None:
        raise KeyError("no retry")

    @app.task(name="proj.kw", autoretry_for=(LookupError,), retry_kwargs={"countdown": 7})
    def kw() -> None:
        raise IndexError("retry")

    dont.delay()
    kw.delay()
    with worker(app) as w:
        messages = app.transport.pop()  # type: ignore[attr-defined]
        assert w.deliver(messages[0]).json()["state"] == "FAILURE"
        before = datetime.now(UTC)
        assert w.deliver(messages[1]).json()["state"] == "RETRY"
    [retry] = app.transport.sent  # type: ignore[attr-defined]
    assert round((retry.eta - before).total_seconds()) == 7


def test_autoretry_jitter_stays_within_the_backoff(app: Celery, worker: Any) -> None:
    @app.task(name="proj.jit", autoretry_for=(KeyError,), retry_backoff=8, max_retries=1)
    def jit() -> None:
        raise KeyError("k")

    with worker(app) as w:
        for _ in range(5):
            jit.delay()
            [message] = app.transport.pop()  # type: ignore[attr-defined]
            before = datetime.now(UTC)
            w.deliver(message)
            [retry] = app.transport.pop()  # type: ignore[attr-defined]
            # A jittered countdown of 0 sends the retry without an ETA, as Celery does.
            delay = 0.0 if retry.eta is None else (retry.eta - before).total_seconds()
            assert -1 <= delay <= 9


def test_hooks_and_signals_in_order(app: Celery, worker: Any, receive: Any) -> None:
    calls: list[str] = []

    class Hooked(Task[Any, Any]):
        def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
            calls.append("before_start")

        def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
            calls.append(f"on_success:{retval}")

        def on_retry(self, exc: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
            calls.append(f"on_retry:{exc!r}")

        def after_return(self, status: str, retval: Any, task_id: str, args: Any,
                         kwargs: Any, einfo: Any) -> None:
            calls.append(f"after_return:{status}")

    @app.task(bind=True, base=Hooked, name="proj.hooked")
    def hooked(self: Task[Any, Any], x: int) -> int:
        calls.append("body")
        if not self.request.retries:
            raise self.retry(exc=KeyError("once"), countdown=1)
        return x

    received = receive(sig.task_received)
    prerun, postrun = receive(sig.task_prerun), receive(sig.task_postrun)
    success, retry = receive(sig.task_success), receive(sig.task_retry)
    hooked.delay(5)
    with worker(app) as w:
        w.deliver_sent()
    assert calls == ["before_start", "body", "on_retry:KeyError('once')", "after_return:RETRY",
                     "before_start", "body", "on_success:5", "after_return:SUCCESS"]
    assert len(received) == 2
    assert [c["task"].name for c in prerun] == ["proj.hooked"] * 2
    assert [c["state"] for c in postrun] == ["RETRY", "SUCCESS"]
    assert success[0]["result"] == 5
    assert success[0]["sender"] is hooked
    assert retry[0]["request"].id == postrun[0]["task_id"]


def test_failure_signal(app: Celery, worker: Any, receive: Any) -> None:
    failure = receive(sig.task_failure)

    @app.task(name="proj.fails")
    def fails(x: int) -> None:
        raise RuntimeError(f"bad {x}")

    result = fails.delay(3)
    with worker(app) as w:
        w.deliver_sent()
    assert failure[0]["task_id"] == result.id
    assert isinstance(failure[0]["exception"], RuntimeError)
    assert failure[0]["einfo"].type is RuntimeError


def current_user(x_user: str = Header(default="anonymous")) -> str:
    return x_user.upper()


def test_dependencies_are_resolved_per_request(app: Celery, worker: Any) -> None:
    @app.task(name="proj.deps")
    def deps(x: int, user: str = Depends(current_user)) -> str:
        return f"{x}:{user}"

    deps.delay(1)
    [message] = app.transport.pop()  # type: ignore[attr-defined]
    with worker(app) as w:
        plain = w.deliver(message)
        with_header = w.post("/_tasks/proj.deps", content=message.body,
                             headers={**message.http_headers(), "X-User": "ada"})
    assert plain.json()["result"] == "1:ANONYMOUS"
    assert with_header.json()["result"] == "1:ADA"


def test_async_task_runs_on_the_loop_and_sync_in_a_thread(app: Celery, worker: Any) -> None:
    threads: dict[str, str] = {}

    @app.task(name="proj.async_t")
    async def async_t(x: int) -> int:
        await asyncio.sleep(0)
        threads["async"] = threading.current_thread().name
        return x * 2

    @app.task(name="proj.sync_t")
    def sync_t(x: int) -> int:
        threads["sync"] = threading.current_thread().name
        return x * 3

    async_t.delay(2)
    sync_t.delay(2)
    with worker(app) as w:
        responses = w.deliver_sent()
    assert [r.json()["result"] for r in responses] == [4, 6]
    assert threads["async"] != threads["sync"]


def test_concurrent_runs_keep_their_own_request(app: Celery, worker: Any) -> None:
    both_started = threading.Barrier(2, timeout=10)

    @app.task(bind=True, name="proj.conc")
    def conc(self: Task[Any, Any], n: int) -> list[Any]:
        before = self.request.id
        both_started.wait()
        return [before, self.request.id, list(self.request.args)]

    conc.delay(1)
    conc.delay(2)
    messages = app.transport.pop()  # type: ignore[attr-defined]
    with worker(app) as w:
        results: list[Any] = [None, None]

        def send(i: int) -> None:
            results[i] = w.deliver(messages[i]).json()["result"]

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for message, (before, after, args) in zip(messages, results, strict=True):
        assert before == after == message.id
        assert args == [json.loads(message.body)["n"]]


def test_custom_call_is_honoured(app: Celery, worker: Any) -> None:
    contexts: list[str] = []

    class AppContextTask(Task[Any, Any]):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            contexts.append("enter")
            try:
                return super().__call__(*args, **kwargs)
            finally:
                contexts.append("exit")

    flask_app = Celery("flask", broker_url="memory://", task_cls=AppContextTask)

    @flask_app.task(bind=True, name="proj.ctx")
    def ctx(self: Task[Any, Any]) -> bool:
        contexts.append(f"body:{self.request.called_directly}")
        if not self.request.retries:
            raise self.retry(countdown=1)
        return True

    ctx.delay()
    with worker(flask_app) as w:
        responses = w.deliver_sent()
    assert [r.json()["state"] for r in responses] == ["RETRY", "SUCCESS"]
    assert contexts == ["enter", "body:False", "exit"] * 2


def test_links_and_errbacks(app: Celery, worker: Any) -> None:
    got: list[Any] = []

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="proj.record")
    def record(value: int, label: str) -> None:
        got.append((value, label))

    @app.task(name="proj.fail")
    def fail() -> None:
        raise ValueError("nope")

    @app.task(name="proj.old_errback")
    def old_errback(task_id: str) -> None:
        got.append(("old", task_id))

    @app.task(name="proj.new_errback")
    def new_errback(request: Any, exc: Any, traceback: Any) -> None:
        got.append(("new", request.id, repr(exc), "ValueError" in traceback))

    result = add.apply_async((1, 2), link=record.s(label="sum"))
    failed = fail.apply_async(link_error=[old_errback.s(), new_errback.s()])
    with worker(app) as w:
        w.deliver_sent()
    assert (3, "sum") in got
    assert ("old", failed.id) in got
    assert ("new", failed.id, "ValueError('nope')", True) in got
    assert result.id


def test_tasks_sent_from_a_task_carry_parent_and_root(app: Celery, worker: Any) -> None:
    @app.task(name="proj.child")
    def child() -> None: ...

    @app.task(bind=True, name="proj.parent")
    def parent(self: Task[Any, Any]) -> str:
        return child.delay().id

    root = parent.delay()
    with worker(app) as w:
        [response] = w.deliver(app.transport.pop()[0]), *()  # type: ignore[attr-defined]
        [child_message] = app.transport.sent  # type: ignore[attr-defined]
    assert child_message.id == response.json()["result"]
    assert child_message.parent_id == root.id
    assert child_message.root_id == root.id


def test_openapi_documents_each_argument_model(app: Celery, worker: Any) -> None:
    @app.task(name="proj.documented")
    def documented(x: int, when: datetime, label: str = "a") -> None:
        """Do a documented thing."""

    with worker(app) as w:
        spec = w.client.get("/openapi.json").json()
    operation = spec["paths"]["/_tasks/proj.documented"]["post"]
    assert operation["description"] == "Do a documented thing."
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["required"] == ["x", "when"]
    assert schema["properties"]["when"]["format"] == "date-time"


def test_task_registered_after_router_is_still_served(app: Celery, worker: Any) -> None:
    router = app.router

    @app.task(name="proj.late_registered")
    def late_registered() -> str:
        return "served"

    late_registered.delay()
    assert app.router is router
    with worker(app) as w:
        assert w.deliver_sent()[0].json()["result"] == "served"


def test_memory_transport_is_the_recording_transport(app: Celery) -> None:
    assert isinstance(app.transport, MemoryTransport)
    assert MaxRetriesExceededError.__mro__[1].__name__ == "TaskError"


def test_task_may_take_the_request_itself(app: Celery, worker: Any) -> None:
    @app.task(name="proj.with_request")
    def with_request(x: int, request: Request) -> str:
        return f"{x}:{request.headers['x-celery-task-id']}"

    with_request.delay(4)
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert response.status_code == 200
    assert response.json()["result"].startswith("4:")


def test_a_callback_that_cannot_be_sent_fails_the_run_without_on_success(
        app: Celery, worker: Any) -> None:
    calls: list[str] = []

    class Hooks(Task[Any, Any]):
        def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
            calls.append("on_success")

        def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                       einfo: Any) -> None:
            calls.append(f"on_failure:{type(exc).__name__}")

    @app.task(name="proj.text", base=Hooks)
    def text() -> str:
        return "not a number"

    @app.task(name="proj.number")
    def number(n: int) -> None: ...

    text.apply_async(link=number.s())
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert response.json()["state"] == "FAILURE"
    assert calls == ["on_failure:TaskArgumentError"]


def test_expected_errors_in_throws_log_without_traceback(app: Celery, worker: Any,
                                                         caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="celery_gcp.worker")

    @app.task(name="proj.expected", throws=(KeyError,))
    def expected() -> None:
        raise KeyError("missing row")

    expected.delay()
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert response.json()["state"] == "FAILURE"
    [record] = [r for r in caplog.records if "proj.expected" in r.getMessage()]
    assert record.levelname == "INFO"
    assert record.exc_info is None


def test_task_ignore_result_setting_hides_the_result(app: Celery, worker: Any) -> None:
    app.conf.task_ignore_result = True

    @app.task(name="proj.quiet")
    def quiet() -> int:
        return 1

    @app.task(name="proj.loud", ignore_result=False)
    def loud() -> int:
        return 2

    quiet.delay()
    loud.delay()
    with worker(app) as w:
        responses = w.deliver_sent()
    assert "result" not in responses[0].json()
    assert responses[1].json()["result"] == 2


def test_chain_runs_every_step_through_the_worker(app: Celery, worker: Any) -> None:
    from celery_gcp import chain

    results: list[tuple[str | None, int]] = []

    @app.task(bind=True, name="proj.step")
    def step(self: Task[Any, Any], value: int, add: int) -> int:
        results.append((self.request.id, value + add))
        return value + add

    last = chain(step.s(1, 1), step.s(10), step.s(100)).apply_async()
    with worker(app) as w:
        responses = w.deliver_sent()
    assert [r.json()["state"] for r in responses] == ["SUCCESS"] * 3
    assert [value for _, value in results] == [2, 12, 112]
    assert results[-1][0] == last.id
    assert last.parent is not None
    assert last.parent.id == results[1][0]


class Shade(enum.Enum):
    DARK = "dark"


class Item(BaseModel):
    sku: str
    price: Decimal


@dataclasses.dataclass
class Parcel:
    weight: float
    items: list[Item]


def test_values_arrive_exactly_as_sent_over_http(app: Celery, worker: Any) -> None:
    received: dict[str, Any] = {}

    @app.task(name="proj.exact")
    def exact(when: datetime, ident: uuid.UUID, amount: Decimal, shade: Shade, item: Item,
              parcel: Parcel, tags: list[str], pair: tuple[int, datetime]) -> None:
        received.update(when=when, ident=ident, amount=amount, shade=shade, item=item,
                        parcel=parcel, tags=tags, pair=pair)

    tokyo = timezone(timedelta(hours=9))
    sent = {
        "when": datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=tokyo), "ident": uuid.uuid4(),
        "amount": Decimal("19.990"), "shade": Shade.DARK,
        "item": Item(sku="a-1", price=Decimal("2.50")),
        "parcel": Parcel(1.5, [Item(sku="b", price=Decimal("0.10"))]), "tags": ["x", "y"],
        "pair": (3, datetime(2026, 1, 1, tzinfo=UTC)),
    }
    exact.apply_async(kwargs=sent)
    with worker(app) as w:
        [response] = w.deliver_sent()
    assert response.status_code == 200
    assert received == sent
    assert received["when"].utcoffset() == timedelta(hours=9)
    assert str(received["amount"]) == "19.990"
    assert type(received["pair"]) is tuple
    assert isinstance(received["parcel"], Parcel)
