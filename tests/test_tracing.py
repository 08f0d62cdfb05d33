"""Traces and task-aware logs across Cloud Tasks, as users see them: a FastAPI route sends a
task (real HTTP), the emulator delivers it to a served worker, the task logs and sends more.

* without a tracing library: the route's trace (``traceparent`` through TraceMiddleware)
  reaches the task's request, the task's own sends and its retry; log records carry the task
  fields and the trace, and Cloud Logging's JSON names them;
* with OpenTelemetry (the SDK's in-memory exporter, FastAPI instrumented too): producer and
  consumer spans, parented and linked across the queue, the run's exception recorded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from celery_gcp import Celery, tracing
from celery_gcp.testing import serve
from celery_gcp.utils.cloud_logging import CloudLoggingFormatter
from celery_gcp.utils.log import TASK_LOG_FORMAT, TaskFormatter, get_task_logger

from .calls import Calls
from .shared_emulator import SharedEmulator

PARENT = "projects/p/locations/l"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
logger = get_task_logger("tests.tracing")


class Recorder(logging.Handler):
    """Keeps the records it gets."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def headers_of(api: FastAPI, seen: Calls) -> Any:
    """``api`` behind an ASGI wrapper that records each task delivery's trace headers."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/_tasks/"):
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            seen.record(scope["path"].rsplit("/", 1)[1], {
                k: headers.get(k) for k in ("traceparent", "x-cloud-trace-context",
                                            "x-celery-retries")})
        await api(scope, receive, send)

    return asgi


@contextmanager
def project(module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch,
            setup: Callable[[Celery, FastAPI], None] | None = None,
            ) -> Iterator[tuple[Celery, Calls, Calls, str]]:
    """A project: a FastAPI route ``POST /signup`` that sends ``proj.welcome``, which logs,
    retries once and sends ``proj.followup``; served (the tasks too) behind the emulator.
    Yields the app, the calls, the deliveries' headers and the served URL."""
    emu = module_emulator.begin(None)
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", emu.address)
    app = Celery("proj", gcp_project="p", gcp_location="l", task_auth="none")
    calls, seen = Calls(), Calls()

    @app.task(name="proj.followup")
    def followup() -> None:
        calls.record("followup", tracing.current())

    @app.task(name="proj.welcome", bind=True, default_retry_delay=0)
    def welcome(self: Any, user: int) -> None:
        logger.info("welcoming %s", user)
        calls.record("welcome", tracing.current())
        if self.request.retries == 0:
            raise self.retry()
        followup.delay()

    @app.task(name="proj.boom")
    def boom() -> None:
        raise ValueError("boom")

    api = FastAPI()
    api.add_middleware(tracing.TraceMiddleware)

    @api.post("/signup")
    def signup(user: int) -> dict[str, str]:
        return {"id": welcome.delay(user).id}

    @api.post("/explode")
    def explode() -> dict[str, str]:
        return {"id": boom.delay().id}

    api.include_router(app.router)
    if setup is not None:
        setup(app, api)
    try:
        with serve(headers_of(api, seen)) as url:
            app.conf.task_base_url = url
            emu.tasks_client().create_queue(
                parent=PARENT, queue={"name": f"{PARENT}/queues/celery"})
            yield app, calls, seen, url
            emu.wait_idle()
    finally:
        module_emulator.reset()


def test_a_routes_trace_reaches_the_task_its_retry_and_what_it_sends(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with project(module_emulator, monkeypatch) as (_app, calls, seen, url):
        answer = httpx.post(f"{url}/signup", params={"user": 7},
                            headers={"traceparent": f"00-{TRACE}-{SPAN}-01"}, timeout=30)
        assert answer.status_code == 200
        calls.wait_for(3, timeout=60)  # welcome, its retry, followup
        deliveries = seen.wait_for(3, timeout=60)
    assert [name for name, _ in deliveries] == ["proj.welcome", "proj.welcome", "proj.followup"]
    for _, headers in deliveries:
        version, trace_id, _parent, flags = headers["traceparent"].split("-")
        assert (version, trace_id, flags) == ("00", TRACE, "01")
        assert headers["x-cloud-trace-context"].startswith(f"{TRACE}/")
    assert deliveries[0][1]["traceparent"] == f"00-{TRACE}-{SPAN}-01"  # the route's span
    traces = [trace for _, trace in calls.calls]
    assert all(t is not None and t.trace_id == TRACE for t in traces)


def test_a_cloud_trace_context_header_is_continued_as_a_w3c_trace(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with project(module_emulator, monkeypatch) as (_app, calls, seen, url):
        httpx.post(f"{url}/signup", params={"user": 1}, timeout=30,
                   headers={"X-Cloud-Trace-Context": f"{TRACE}/{int(SPAN, 16)};o=1"})
        calls.wait_for(3, timeout=60)
        (_, first), *_ = seen.wait_for(3, timeout=60)
    assert first["traceparent"] == f"00-{TRACE}-{SPAN}-01"


def test_without_a_trace_nothing_is_added_to_the_task() -> None:
    app = Celery("plain", broker_url="memory://")

    @app.task(name="plain.add")
    def add(x: int, y: int) -> int:
        return x + y

    add.delay(1, 2)
    (message,) = app.transport.pop()  # type: ignore[attr-defined]
    assert message.trace == {}
    assert not {"traceparent", "X-Cloud-Trace-Context"} & message.http_headers().keys()


@pytest.mark.parametrize("header", [
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # the all-zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # the all-zero span id
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is invalid
    "00-4bf92f3577b34da6-00f067aa0ba902b7-01", "garbage",
])
def test_an_invalid_traceparent_starts_no_trace(header: str) -> None:
    assert tracing.TraceContext.from_headers({"traceparent": header}) is None


def test_task_log_records_carry_the_task_and_its_trace_in_any_format(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        with project(module_emulator, monkeypatch) as (app, calls, _seen, url):
            answer = httpx.post(f"{url}/signup", params={"user": 7}, timeout=30,
                                headers={"traceparent": f"00-{TRACE}-{SPAN}-01"})
            task_id = answer.json()["id"]
            calls.wait_for(3, timeout=60)
            late = app.tasks["proj.followup"].apply_async(
                expires=datetime.now(UTC) - timedelta(seconds=1))
            expired_id = late.id
    finally:
        root.removeHandler(recorder)
        root.setLevel(level)
    (first, second) = [r for r in recorder.records if r.getMessage() == "welcoming 7"]
    assert (first.task_id, first.task_name, first.task_retries, first.task_queue) == (  # type: ignore[attr-defined]
        task_id, "proj.welcome", 0, "celery")
    assert second.task_retries == 1  # type: ignore[attr-defined]
    assert first.cloudtasks_task_name == task_id  # type: ignore[attr-defined]
    assert first.trace_id == TRACE  # type: ignore[attr-defined]
    text = TaskFormatter(TASK_LOG_FORMAT).format(first)
    assert text.endswith(f"proj.welcome[{task_id}]: welcoming 7")
    entry = json.loads(CloudLoggingFormatter(project="p").format(first))
    assert entry["severity"] == "INFO"
    assert entry["message"] == "welcoming 7"
    assert entry["logging.googleapis.com/trace"] == f"projects/p/traces/{TRACE}"
    assert len(entry["logging.googleapis.com/spanId"]) == 16
    assert entry["logging.googleapis.com/labels"]["task_id"] == task_id
    assert entry["logging.googleapis.com/sourceLocation"]["function"] == "welcome"
    # The worker's own line about a delivery it skipped carries the delivery's fields.
    (skipped,) = [r for r in recorder.records if "expired at" in r.getMessage()]
    assert (skipped.task_id, skipped.task_name) == (  # type: ignore[attr-defined]
        expired_id, "proj.followup")
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "plain", None, None)
    assert TaskFormatter("%(task_name)s[%(task_id)s]: %(message)s").format(
        logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "plain", None, None),
    ) == "???[???]: plain"
    assert "logging.googleapis.com/labels" not in json.loads(
        CloudLoggingFormatter(project="p").format(outside))


def test_opentelemetry_spans_are_parented_and_linked_across_the_queue(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    from celery_gcp.contrib.opentelemetry import instrument

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def setup(app: Celery, api: FastAPI) -> None:
        instrument(app, tracer_provider=provider)
        FastAPIInstrumentor.instrument_app(api, tracer_provider=provider)

    with project(module_emulator, monkeypatch, setup) as (_app, calls, _seen, url):
        httpx.post(f"{url}/signup", params={"user": 3}, timeout=30)
        calls.wait_for(3, timeout=60)
        httpx.post(f"{url}/explode", timeout=30)
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (signup,) = [s for s in spans if s.kind == SpanKind.SERVER and "/signup" in s.name]
    trace_id = signup.context.trace_id
    produced = by_name["apply_async/proj.welcome"]
    runs = by_name["run/proj.welcome"]
    assert len(produced) == 2  # the send, and the retry's
    assert len(runs) == 2  # the run, and the retry
    assert all(s.kind == SpanKind.PRODUCER for s in produced)
    assert produced[0].parent.span_id == signup.context.span_id  # sent inside the route
    for run in runs:
        assert run.kind == SpanKind.CONSUMER
        assert run.context.trace_id == trace_id
        # A child of the worker's own server span (FastAPI is instrumented too) ...
        (server,) = [s for s in spans if s.context.span_id == run.parent.span_id]
        assert server.kind == SpanKind.SERVER
        # ... whose parent is the producer span, also linked from the consumer span.
        (link,) = run.links
        assert server.parent.span_id == link.context.span_id
    assert {r.attributes["celery.state"] for r in runs} == {"RETRY", "SUCCESS"}
    assert runs[0].attributes["celery.task_name"] == "proj.welcome"
    # The retry and the followup were sent from inside a run: children of its span.
    retry_send = produced[1]
    assert retry_send.parent.span_id in {r.context.span_id for r in runs}
    (followup_send,) = by_name["apply_async/proj.followup"]
    assert followup_send.parent.span_id in {r.context.span_id for r in runs}
    (boom,) = by_name["run/proj.boom"]
    assert boom.status.status_code == StatusCode.ERROR
    assert [e.name for e in boom.events] == ["exception"]
    assert boom.attributes["celery.state"] == "FAILURE"
