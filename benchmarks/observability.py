"""Benchmarks of what observability costs: tracing on sends and runs, and the dashboard.

Run ``python benchmarks/observability.py`` (about a minute) or ``--quick`` (seconds);
``--smoke`` checks that the script works (its figures mean nothing); ``--strict`` exits 1 when
a target is missed. Every pair runs in alternating rounds after a warm-up; a row's ratio is the
median of its per-round ratios.

1. CPU per ``add.delay(2, 3)`` (memory transport), against the same send with no trace:
   (a) inside a traced request (a ``traceparent`` continued, as ``TraceMiddleware`` or a worker
   run sets it): at most 5% more; (b) with ``contrib.opentelemetry`` on (SDK tracer provider,
   every span sampled and exported to memory), inside a span: at most 25% more. The memory
   transport's send is the cheapest there is, so (a) and (b) are the worst case: (c) and (d)
   are the same pairs through the Cloud Tasks transport, as production sends (gRPC to
   ``celery-gcp emulator`` in its own process, on a paused queue; the sender's CPU only): at
   most 5% and 25% more.
2. Worker throughput in-process (httpx over ASGI, a no-op ``async def`` task), against the
   same requests with no trace: (a) each request carrying a ``traceparent`` the run continues:
   within 5%; (b) with ``contrib.opentelemetry`` on (a consumer span per run): within 25%.
3. Dashboard: the main page rendered over HTTP with 10,000 tasks waiting in a queue of the
   embedded emulator (the page lists each queue's first 100), against the same page with 100
   tasks waiting: under 500 ms, and the ratio shows what the other 9,900 cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from common import Row, fmt, interleave, paired, post_many, progress, report

import celery_gcp
from celery_gcp import tracing
from celery_gcp.transport import MemoryTransport

T = TypeVar("T")

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass(frozen=True)
class Mode:
    """How much work each benchmark does."""

    rounds: int
    short_rounds: int  # 1's and 2's rounds are short: many, so a burst of noise spoils few
    delay_calls: int
    requests: int
    renders: int
    many: int  # tasks waiting for 3.
    grpc_calls: int  # sends per round in 1c


FULL = Mode(rounds=11, short_rounds=61, delay_calls=300, requests=100, renders=15,
            many=10_000, grpc_calls=100)
QUICK = Mode(rounds=3, short_rounds=9, delay_calls=300, requests=100, renders=5, many=10_000,
             grpc_calls=50)
SMOKE = Mode(rounds=1, short_rounds=1, delay_calls=10, requests=5, renders=1, many=150,
             grpc_calls=5)


def row(name: str, unit: str, ours: list[float], baseline: list[float], baseline_name: str,
        target: float, lower_is_better: bool) -> Row:
    """A report row of two sides' alternating rounds: medians and the paired ratio."""
    ratio, rounds = paired(ours, baseline)
    met = ratio <= target if lower_is_better else ratio >= target
    bound = f"<= {target:.2f}" if lower_is_better else f">= {target:.2f}"
    return Row(name, f"{fmt(statistics.median(ours))} {unit}",
               f"{baseline_name} {fmt(statistics.median(baseline))}", ratio, bound, met,
               [f"per-round ratios {rounds}"])


def tracer_provider() -> tuple[Any, Any]:
    """An SDK tracer provider exporting every span to memory, and its exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@contextmanager
def traced_request() -> Iterator[None]:
    """As inside a request whose ``traceparent`` is continued."""
    token = tracing.use(tracing.TraceContext.from_headers({"traceparent": PARENT}))
    try:
        yield
    finally:
        tracing.reset(token)


def send_sides(timed: Callable[[T], float], plain: T, otel: T, calls: int, provider: Any,
               exporter: Any, rounds: int) -> list[list[float]]:
    """1's three sides in alternating rounds after a warm-up: ``timed(plain)`` untraced, in a
    traced request, and ``timed(otel)`` (``calls`` sends, OpenTelemetry on) inside a span."""
    tracer = provider.get_tracer("bench")

    def off() -> float:
        return timed(plain)

    def headers() -> float:
        with traced_request():
            return timed(plain)

    def opentelemetry() -> float:
        with tracer.start_as_current_span("request"):
            value = timed(otel)
        if len(exporter.get_finished_spans()) < calls:
            raise RuntimeError("OpenTelemetry exported fewer spans than sends")
        exporter.clear()
        return value

    sides = [off, headers, opentelemetry]
    for side in sides:
        side()
    return interleave(sides, rounds)


# -- 1. sends --------------------------------------------------------------------------------


def bench_delay(mode: Mode) -> list[Row]:
    """µs of CPU per ``.delay()``: untraced vs in a traced request vs OpenTelemetry on."""
    from celery_gcp.contrib.opentelemetry import instrument

    plain = celery_gcp.Celery("bench_plain", broker_url="memory://")
    otel = celery_gcp.Celery("bench_otel", broker_url="memory://")
    provider, exporter = tracer_provider()
    instrument(otel, tracer_provider=provider)
    adds = {}
    for app in (plain, otel):
        @app.task(name="bench.add")
        def add(x: int, y: int) -> int:
            return x + y
        adds[app.main] = add

    def timed(app: celery_gcp.Celery) -> float:
        add = adds[app.main]
        start = time.process_time()
        for _ in range(mode.delay_calls):
            add.delay(2, 3)
        elapsed = time.process_time() - start
        transport = app.transport
        assert isinstance(transport, MemoryTransport)
        if len(transport.sent) != mode.delay_calls:
            raise RuntimeError(f"{app.main} recorded {len(transport.sent)} messages")
        transport.clear()
        return elapsed / mode.delay_calls * 1e6

    untraced, traced, spans = send_sides(timed, plain, otel, mode.delay_calls, provider,
                                         exporter, mode.short_rounds)
    return [row("1a. .delay(), traced request", "µs", traced, untraced, "untraced", 1.05, True),
            row("1b. .delay(), OpenTelemetry", "µs", spans, untraced, "untraced", 1.25, True)]


def bench_delay_cloud_tasks(mode: Mode) -> list[Row]:
    """µs of the sender's CPU per ``.delay()`` through the Cloud Tasks transport (gRPC to
    ``celery-gcp emulator`` in its own process, a paused queue): untraced vs in a traced
    request vs OpenTelemetry on, inside a span."""
    from transport import (
        SCHEDULER_HOST_VARIABLE,
        TASKS_HOST_VARIABLE,
        emulator_process,
        environ,
        sending_setup,
    )

    from celery_gcp.contrib.opentelemetry import instrument

    provider, exporter = tracer_provider()
    with tempfile.TemporaryDirectory() as tmp, emulator_process(Path(tmp)) as (
            address, http_url, _), environ(
            **{TASKS_HOST_VARIABLE: address, SCHEDULER_HOST_VARIABLE: address}):
        plain = sending_setup(address, http_url)
        otel = sending_setup(address, http_url)
        instrument(otel.app, tracer_provider=provider)

        def timed(s: Any) -> float:
            start = time.process_time()  # this process only: the emulator's CPU is its own
            for _ in range(mode.grpc_calls):
                s.add.delay(2, 3)
            elapsed = time.process_time() - start
            s.check_and_purge(mode.grpc_calls)
            return elapsed / mode.grpc_calls * 1e6

        untraced, traced, spans = send_sides(timed, plain, otel, mode.grpc_calls, provider,
                                             exporter, mode.short_rounds)
    return [row("1c. .delay() via gRPC, traced", "µs", traced, untraced, "untraced", 1.05,
                True),
            row("1d. .delay() via gRPC, OTel", "µs", spans, untraced, "untraced", 1.25,
                True)]


# -- 2. runs ---------------------------------------------------------------------------------


def bench_worker(mode: Mode) -> list[Row]:
    """Requests/s through a no-op task: untraced vs continuing a trace vs OpenTelemetry on."""
    from fastapi import FastAPI

    from celery_gcp.contrib.opentelemetry import instrument

    plain = celery_gcp.Celery("bench_plain", broker_url="memory://", task_auth="none")
    otel = celery_gcp.Celery("bench_otel", broker_url="memory://", task_auth="none",
                             task_endpoint_prefix="/_otel")
    provider, exporter = tracer_provider()
    instrument(otel, tracer_provider=provider)
    api = FastAPI()
    for app in (plain, otel):
        @app.task(name="bench.noop")
        async def noop(x: int) -> None:
            """Do nothing."""
        api.include_router(app.router)

    def request_of(app: celery_gcp.Celery) -> tuple[str, bytes, dict[str, str]]:
        app.tasks["bench.noop"].delay(1)
        transport = app.transport
        assert isinstance(transport, MemoryTransport)
        [message] = transport.pop()
        return (f"{app.conf.task_endpoint_prefix.rstrip('/')}/{message.task}", message.body,
                message.http_headers())

    plain_path, body, untraced_headers = request_of(plain)
    otel_path, otel_body, otel_headers = request_of(otel)
    traced_headers = {**untraced_headers, "traceparent": PARENT}
    results = []
    with asyncio.Runner() as runner:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                   base_url="http://bench")

        def side(path: str, content: bytes, headers: dict[str, str]) -> Callable[[], float]:
            def run() -> float:
                value = runner.run(post_many(client, path, content, headers, mode.requests))
                exporter.clear()
                return value
            return run

        sides = [side(plain_path, body, untraced_headers),
                 side(plain_path, body, traced_headers),
                 side(otel_path, otel_body, otel_headers)]
        for warm_up in sides:
            warm_up()
        runner.run(client.post(otel_path, content=otel_body, headers=otel_headers))
        if not any(s.name.startswith("run/") for s in exporter.get_finished_spans()):
            raise RuntimeError("the instrumented worker made no consumer span")
        untraced, traced, spans = interleave(sides, mode.short_rounds)
        results += [row("2a. worker, trace continued", "req/s", traced, untraced, "untraced",
                        0.95, False),
                    row("2b. worker, OpenTelemetry", "req/s", spans, untraced, "untraced",
                        0.75, False)]
        runner.run(client.aclose())
    return results


# -- 3. dashboard ----------------------------------------------------------------------------


def bench_dashboard(mode: Mode) -> Row:
    """ms to render the main page with ``mode.many`` tasks waiting vs with 100."""
    from celery_gcp.dashboard import dashboard_app
    from celery_gcp.emulator import Emulator
    from celery_gcp.testing import serve

    emulator = Emulator()
    emulator.start()
    try:
        for name, value in emulator.environ().items():
            os.environ[name] = value
        sites = []
        for queue_id, count in (("many", mode.many), ("few", min(100, mode.many))):
            app = celery_gcp.Celery(f"dash_{queue_id}", gcp_project="bench",
                                    gcp_location="local", task_default_queue=queue_id,
                                    task_base_url="http://127.0.0.1:9",
                                    gcp_service_account="tasks@bench.iam.gserviceaccount.com")

            @app.task(name="shop.charge")
            def charge(order: str, cents: int) -> None:
                """A typical task."""

            parent = "projects/bench/locations/local"
            client = emulator.tasks_client()
            client.create_queue(parent=parent, queue={"name": f"{parent}/queues/{queue_id}"})
            client.pause_queue(name=f"{parent}/queues/{queue_id}")
            celery_gcp.group(charge.s(f"order-{i}", i) for i in range(count)).apply_async()
            sites.append(app)
        with serve(dashboard_app(sites[0])) as many_url, serve(dashboard_app(sites[1])) as few_url:
            http = httpx.Client(timeout=60)

            def render(url: str) -> float:
                start = time.perf_counter()
                page = http.get(url + "/")
                elapsed = time.perf_counter() - start
                if page.status_code != 200 or "shop.charge" not in page.text:
                    raise RuntimeError(f"the dashboard answered {page.status_code}")
                return elapsed * 1e3

            def side(url: str) -> Callable[[], float]:
                return lambda: statistics.median(render(url) for _ in range(mode.renders))

            sides = [side(many_url), side(few_url)]
            for warm_up in sides:
                warm_up()
            many, few = interleave(sides, mode.rounds)
            http.close()
    finally:
        emulator.stop()
    ratio, rounds = paired(many, few)
    worst = statistics.median(many)
    return Row(f"3. dashboard, {mode.many:,} waiting", f"{fmt(worst)} ms",
               f"100 waiting {fmt(statistics.median(few))}", ratio, "< 500 ms", worst < 500,
               [f"per-round ratios {rounds}; median of {mode.renders} renders per round"])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)
    mode = SMOKE if args.smoke else QUICK if args.quick else FULL
    label = "smoke" if args.smoke else "quick" if args.quick else "full"
    print(f"celery_gcp observability benchmarks ({label}) | Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs\n")
    rows: list[Row] = []
    progress("1. sends")
    rows += bench_delay(mode)
    rows += bench_delay_cloud_tasks(mode)
    progress("2. worker")
    rows += bench_worker(mode)
    progress("3. dashboard")
    rows.append(bench_dashboard(mode))
    met = report(rows, name_width=30, target_width=9)
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
