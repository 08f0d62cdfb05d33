"""Benchmarks of the Cloud Tasks transport, and of celery_gcp end to end against Celery on Redis.

Run ``python benchmarks/transport.py`` (about five minutes) or ``python benchmarks/transport.py
--quick`` (a smoke run, under a minute). ``--strict`` exits with status 1 when a target is
missed. Everything binds to 127.0.0.1 and every wait has a deadline; every process started here
(emulator, redis-server, workers) is stopped at the end.

1. Sending, against ``celery-gcp emulator`` in its own process, on a paused queue (so dispatch
   does not compete): ``add.delay()`` vs the official client's ``create_task`` of the same
   request (``CloudTasksTransport.create_request``: same queue, URL, headers and body; a fresh
   task name per copy, built before timing), on the same client. (a) sync, sequential; (b) async,
   ``await add.adelay()`` vs ``await async_client.create_task``, 32 calls in flight. Target:
   ours / raw >= 0.9.
   (c) a FastAPI route's ``.delay()`` (``DelayedRouteBuilder``; a path, a list query and a model
   body parameter, each validated and encoded) vs ``create_task`` of the same request, on the
   route's client; (d) the same route served with ``app.TaskRoute``. Target: >= 0.9.
2. Bulk: ``group(add.s(i, i) for i in range(1000)).apply_async()`` (BatchCreateTasks, 100
   tasks a call) vs 1,000 sequential ``.delay()`` calls, same emulator. Target: >= 5x faster.
3. Against Celery 5 with a Redis broker (``redis-server`` on a loopback port; a prefork worker,
   ``--concurrency 2``; no result backend, completions pushed to a Redis list by the task).
   Ours: the same no-op ``def`` task under :class:`celery_gcp.dev.DevStack` (its emulator in a
   child process -> uvicorn worker in this process), queues at Cloud Tasks' highest limits
   (500/s, 5,000 concurrent).
   (a) 5,000 tasks sent with ``group(...).apply_async()``, from the first send to the last
       completion; ours on one queue (capped at 500/s, as Cloud Tasks is) and spread over four
       queues by task name. Target: ours >= 0.5x Celery.
   (b) ``.delay()`` -> task start latency, p50 of sequential sends 15 ms apart (``time.time()``
       before the call and on the task's first line). Target: <= 5 ms.
   (c) worker start -> first task: a worker process spawned with one task already waiting
       (in Redis; in an emulator retrying every 50 ms until the worker's port answers).
       Target: ours <= Celery.

Needs ``redis-server`` on ``PATH`` (Debian: ``apt-get install redis-server``) and the ``redis``
Python package (``pip install "celery[redis]"``) besides the ``test`` extra. Linux only
(``/proc`` for CPU times).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import celery  # type: ignore[import-untyped]
import grpc
import httpx
import redis
from common import Row, fmt, interleave, paired, progress, report
from fastapi import APIRouter, Query
from google.cloud import tasks_v2
from google.protobuf import duration_pb2
from pydantic import BaseModel

import celery_gcp
from celery_gcp import gcp
from celery_gcp.dev import DevStack
from celery_gcp.emulator import Emulator
from celery_gcp.emulator.clients import SCHEDULER_HOST_VARIABLE, TASKS_HOST_VARIABLE
from celery_gcp.fastapi import DelayedRouteBuilder
from celery_gcp.platform import MAX_BATCH
from celery_gcp.transport.cloudtasks import CloudTasksTransport

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
RPC_TIMEOUT = 30.0  # every RPC's own deadline
MAX_RATE = 500.0  # the highest max_dispatches_per_second Cloud Tasks accepts
MAX_CONCURRENT = 5000  # the highest max_concurrent_dispatches
RETRY_GAP = 0.05  # min_backoff = max_backoff of the queue in 3c
SPREAD_QUEUES = 4
SERVICE_ACCOUNT = "tasks@bench.iam.gserviceaccount.com"
RequestPb: Any = tasks_v2.CreateTaskRequest.pb()


@dataclass(frozen=True)
class Mode:
    """How much work each benchmark does."""

    name: str
    rounds: int  # alternating rounds per side in 1 and 2
    sync_calls: int
    async_calls: int
    group_size: int
    e2e_tasks: int
    e2e_rounds: int
    latency_samples: int
    latency_rounds: int
    start_rounds: int
    concurrency: int = 32  # async sends in flight in 1b
    gap: float = 0.015  # seconds between sends in 3b


FULL = Mode("full", rounds=9, sync_calls=1000, async_calls=2000, group_size=1000,
            e2e_tasks=5000, e2e_rounds=3, latency_samples=200, latency_rounds=4, start_rounds=5)
QUICK = Mode("quick", rounds=2, sync_calls=200, async_calls=400, group_size=1000,
             e2e_tasks=1000, e2e_rounds=1, latency_samples=40, latency_rounds=2, start_rounds=1)


# -- helpers ---------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> str:
    """Every round's figure, in order."""
    return ", ".join(fmt(v) for v in values)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.005) -> None:
    """Poll ``condition`` until it holds; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)  # polling a condition, bounded by the deadline


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or, with ``None``, unset) environment variables; restore them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class Process:
    """A child process in its own session, its output in a log file; stopped for sure."""

    def __init__(self, args: Sequence[str], log: Path, cwd: Path,
                 env: dict[str, str] | None = None) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                list(args), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def text(self) -> str:
        """What it printed so far."""
        return self.log.read_text(errors="replace")

    def check_alive(self, what: str) -> None:
        """Raise with the end of its log if it exited."""
        if self.popen.poll() is not None:
            raise RuntimeError(f"{what} exited ({self.popen.returncode}):\n{self.text()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a graceful stop), then SIGKILL to its process group after ``timeout``."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # its own group: children left behind
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)


# -- the emulator process (1 and 2) ----------------------------------------------------------


@contextlib.contextmanager
def emulator_process(workdir: Path, timeout: float = 60.0) -> Iterator[tuple[str, str, int]]:
    """``python -m celery_gcp.cli emulator`` on free ports: (gRPC address, HTTP URL, pid)."""
    process = Process([sys.executable, "-m", "celery_gcp.cli", "emulator", "--host", HOST,
                       "--port", "0", "--http-port", "0"],
                      workdir / f"emulator-{uuid.uuid4().hex[:8]}.log", ROOT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            text = process.text()
            grpc_at = re.search(r"CLOUD_TASKS_EMULATOR_HOST=(\S+)", text)
            http_at = re.search(r"status:\s+(http://\S+)/status", text)
            if grpc_at and http_at:
                break
            process.check_alive("celery-gcp emulator")
            if time.monotonic() > deadline:
                raise TimeoutError(f"celery-gcp emulator did not start:\n{text[-3000:]}")
            time.sleep(0.05)  # polling its log, bounded by the deadline
        yield grpc_at[1], http_at[1], process.pid
    finally:
        process.stop()


def queue_size(http_url: str, queue: str) -> int:
    """How many tasks the emulator holds in ``queue``, from its ``/status`` view."""
    status = httpx.get(f"{http_url}/status", timeout=RPC_TIMEOUT, trust_env=False).json()
    return sum(int(q["taskCount"]) for q in status["queues"] if q.get("name") == queue)


# -- 1 and 2. sending ------------------------------------------------------------------------


@dataclass
class Sending:
    """The transport app, its queue and the template request for the raw client's copies."""

    app: celery_gcp.Celery
    add: Any
    transport: CloudTasksTransport
    queue: str
    template: Any  # raw CreateTaskRequest protobuf, as create_request builds it
    http_url: str

    def copies(self, count: int, template: Any = None) -> list[Any]:
        """``count`` copies of the template request, each with a fresh task name (proto-plus)."""
        out = []
        for _ in range(count):
            pb = RequestPb()
            pb.CopyFrom(self.template if template is None else template)
            pb.task.name = f"{self.queue}/tasks/{uuid.uuid4().hex}"
            out.append(tasks_v2.CreateTaskRequest.wrap(pb))
        return out

    def check_and_purge(self, expected: int) -> None:
        """Check the paused queue holds ``expected`` tasks, then empty it (not timed)."""
        held = queue_size(self.http_url, self.queue)
        if held != expected:
            raise RuntimeError(f"the queue holds {held} tasks, {expected} were sent")
        self.transport.client().purge_queue(name=self.queue, timeout=RPC_TIMEOUT)


def sending_setup(address: str, http_url: str) -> Sending:
    """An app sending to a fresh paused queue of the emulator at ``address`` (env already set)."""
    queue_name = f"bench-{uuid.uuid4().hex[:12]}"
    app = celery_gcp.Celery("bench_transport", set_as_current=False, gcp_project="bench",
                            gcp_location="local", task_base_url="http://127.0.0.1:9",
                            task_default_queue=queue_name)

    @app.task(name="bench.add")
    def add(x: int, y: int) -> int:
        return x + y

    transport = app.transport
    assert isinstance(transport, CloudTasksTransport)
    queue = gcp.queue_path(app, queue_name)
    client = transport.client()
    client.create_queue(parent=queue.rsplit("/queues/", 1)[0], timeout=RPC_TIMEOUT, queue={
        "name": queue, "rate_limits": {"max_dispatches_per_second": MAX_RATE,
                                       "max_concurrent_dispatches": MAX_CONCURRENT}})
    client.pause_queue(name=queue, timeout=RPC_TIMEOUT)
    template = transport.create_request(add.s(1, 1).message())
    return Sending(app, add, transport, queue, template, http_url)


def sync_rates(mode: Mode, s: Sending, send: Callable[[int], Any], client: Any,
               template: Any = None) -> tuple[list[float], list[float]]:
    """Calls/s of ``send(i)`` vs ``client.create_task`` of copies of ``template``, sequential,
    in alternating rounds (after one warm-up round each)."""
    n = mode.sync_calls

    def ours() -> float:
        start = time.perf_counter()
        for i in range(n):
            send(i)
        rate = n / (time.perf_counter() - start)
        s.check_and_purge(n)
        return rate

    def raw() -> float:
        requests = s.copies(n, template)
        start = time.perf_counter()
        for request in requests:
            client.create_task(request=request)
        rate = n / (time.perf_counter() - start)
        s.check_and_purge(n)
        return rate

    for side in (ours, raw):  # warm up: channel, code paths
        side()
    mine, theirs = interleave([ours, raw], mode.rounds)
    return mine, theirs


def bench_sync(mode: Mode, s: Sending) -> Row:
    """1a. Sequential ``.delay()`` vs sequential ``client.create_task`` (calls/s)."""
    mine, theirs = sync_rates(mode, s, lambda i: s.add.delay(i, i), s.transport.client())
    a, b = statistics.median(mine), statistics.median(theirs)
    ratio, ratios = paired(mine, theirs)
    return Row(f"1a. sync send, {mode.sync_calls:,} calls", f"{fmt(a)} calls/s",
               f"raw {fmt(b)}/s", ratio, "ratio >= 0.9", ratio >= 0.9,
               [f"rounds: .delay() {spread(mine)}; create_task {spread(theirs)} calls/s; "
                f"ratios {ratios}"])


class Amount(BaseModel):
    cents: int
    currency: str = "EUR"


def route_endpoints(s: Sending) -> tuple[Any, Any]:
    """The same route twice: under ``DelayedRouteBuilder`` and under ``app.TaskRoute``."""
    route_class = DelayedRouteBuilder(queue_path=s.queue, base_url="http://127.0.0.1:9",
                                      auto_create_queue=False)
    built, bridged = APIRouter(route_class=route_class), APIRouter(route_class=s.app.TaskRoute)

    def charge(order_id: int, amount: Amount,
               tags: Annotated[list[str] | None, Query()] = None) -> None: ...

    built.post("/orders/{order_id}/charge")(charge)

    def charge_task(order_id: int, amount: Amount,
                    tags: Annotated[list[str] | None, Query()] = None) -> None: ...

    bridged.post("/orders/{order_id}/charge")(charge_task)
    return charge, charge_task


def bench_route(mode: Mode, s: Sending, which: str, endpoints: tuple[Any, Any]) -> Row:
    """1c / 1d. A route's ``.delay()`` vs ``create_task`` of the request it sends."""
    built, bridged = endpoints
    endpoint = built if which == "c" else bridged
    if which == "c":
        delayer = built.options()
        client = delayer.transport.client()
        template = delayer.transport.create_request(
            delayer.message((1,), {"amount": {"cents": 1}, "tags": ["a", "b"]}))
    else:
        client = s.transport.client()
        template = s.transport.create_request(bridged.s(
            1, amount={"cents": 1}, tags=["a", "b"]).message())
    mine, theirs = sync_rates(
        mode, s, lambda i: endpoint.delay(i, amount={"cents": i}, tags=["a", "b"]), client,
        template)
    a, b = statistics.median(mine), statistics.median(theirs)
    ratio, ratios = paired(mine, theirs)
    label = "DelayedRouteBuilder" if which == "c" else "app.TaskRoute"
    return Row(f"1{which}. route .delay(), {label}", f"{fmt(a)} calls/s", f"raw {fmt(b)}/s",
               ratio, "ratio >= 0.9", ratio >= 0.9,
               [f"rounds: .delay() {spread(mine)}; create_task {spread(theirs)} calls/s; "
                f"ratios {ratios}"])


async def bounded(count: int, concurrency: int, call: Callable[[int], Awaitable[Any]],
                  timeout: float) -> float:
    """Make ``count`` calls, at most ``concurrency`` in flight; calls per second."""
    indexes = iter(range(count))

    async def worker() -> None:
        for i in indexes:  # the workers share one iterator
            await call(i)

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout)
    return count / (time.perf_counter() - start)


def bench_async(mode: Mode, s: Sending) -> Row:
    """1b. ``await add.adelay()`` vs ``await async_client.create_task``, bounded concurrency."""
    n, limit = mode.async_calls, mode.concurrency
    timeout = 60.0 + n / 50
    with asyncio.Runner() as runner:
        async def client() -> Any:
            return s.transport.async_client()  # the transport's client of this loop

        aclient = runner.run(client())

        async def adelay(i: int) -> None:
            await s.add.adelay(i, i)

        def ours() -> float:
            rate = runner.run(bounded(n, limit, adelay, timeout))
            s.check_and_purge(n)
            return rate

        def raw() -> float:
            requests = s.copies(n)

            async def create(i: int) -> None:
                await aclient.create_task(request=requests[i])

            rate = runner.run(bounded(n, limit, create, timeout))
            s.check_and_purge(n)
            return rate

        for side in (ours, raw):
            side()
        mine, theirs = interleave([ours, raw], mode.rounds)
        runner.run(aclient.transport.close())
    a, b = statistics.median(mine), statistics.median(theirs)
    ratio, ratios = paired(mine, theirs)
    return Row(f"1b. async send, {limit} in flight", f"{fmt(a)} calls/s", f"raw {fmt(b)}/s",
               ratio, "ratio >= 0.9", ratio >= 0.9,
               [f"{n:,} calls per round: adelay() {spread(mine)}; create_task "
                f"{spread(theirs)} calls/s; ratios {ratios}"])


def bench_group(mode: Mode, s: Sending) -> Row:
    """2. ``group(...).apply_async()`` (bulk) vs the same number of sequential ``.delay()``.

    A third side, the raw client doing what ``send_many`` does (BatchCreateTasks of 100
    requests built beforehand, the batches sent from as many threads as ``send_many`` uses),
    shows the ceiling of any bulk send on this machine.
    """
    n = mode.group_size
    client = s.transport.client()
    batches = -(-n // MAX_BATCH)
    threads = min(batches, int(s.app.conf.get("task_send_concurrency") or 16))

    def bulk() -> float:
        start = time.perf_counter()
        celery_gcp.group(s.add.s(i, i) for i in range(n)).apply_async()
        elapsed = time.perf_counter() - start
        s.check_and_purge(n)
        return elapsed

    def one_by_one() -> float:
        start = time.perf_counter()
        for i in range(n):
            s.add.delay(i, i)
        elapsed = time.perf_counter() - start
        s.check_and_purge(n)
        return elapsed

    def raw_bulk() -> float:
        requests = [r._pb for r in s.copies(n)]
        chunks = [tasks_v2.BatchCreateTasksRequest(parent=s.queue,
                                                   requests=requests[i:i + MAX_BATCH])
                  for i in range(0, n, MAX_BATCH)]

        def send(chunk: Any) -> None:
            client.batch_create_tasks(request=chunk, timeout=RPC_TIMEOUT).result(RPC_TIMEOUT)

        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(send, chunks))
        elapsed = time.perf_counter() - start
        s.check_and_purge(n)
        return elapsed

    for side in (bulk, one_by_one, raw_bulk):
        side()
    groups, delays, raws = interleave([bulk, one_by_one, raw_bulk], mode.rounds)
    g, d, r = (statistics.median(x) for x in (groups, delays, raws))
    ratio, ratios = paired(delays, groups)
    return Row(f"2. group of {n:,} vs .delay()", f"{g * 1e3:,.0f} ms", f"delays {d * 1e3:,.0f} ms",
               ratio, "speed-up >= 5", ratio >= 5.0,
               [f"rounds: group {spread([x * 1e3 for x in groups])} ms; sequential .delay() "
                f"{spread([x * 1e3 for x in delays])} ms; ratio = sequential / group: "
                f"{ratios}",
                f"ceiling: the raw client doing what send_many does ({batches} BatchCreateTasks "
                f"calls of pre-built requests from {threads} threads) took {fmt(r * 1e3)} ms "
                f"(rounds {spread([x * 1e3 for x in raws])}): the group reaches {r / g:.0%} of "
                f"that"])


def bench_sending(mode: Mode, workdir: Path) -> list[Row]:
    """1a-1d and 2 against one emulator process."""
    with emulator_process(workdir) as (address, http_url, _), environ(
            **{TASKS_HOST_VARIABLE: address, SCHEDULER_HOST_VARIABLE: address}):
        s = sending_setup(address, http_url)
        try:
            progress("1a. sync send")
            rows = [bench_sync(mode, s)]
            progress("1b. async send")
            rows.append(bench_async(mode, s))
            endpoints = route_endpoints(s)
            for which in "cd":
                progress(f"1{which}. route .delay()")
                rows.append(bench_route(mode, s, which, endpoints))
            progress("2. group vs .delay()")
            rows.append(bench_group(mode, s))
        finally:
            s.app.close()
    return rows


# -- 3. against Celery on Redis --------------------------------------------------------------

CELERY_MODULE = "bench_celery_worker"
GCP_MODULE = "bench_gcp_worker"
WORKER_MODULES = {
    CELERY_MODULE: '''
        """Celery 5 on Redis: the no-op task (written by benchmarks/transport.py)."""

        import os
        import time

        import redis
        from celery import Celery

        app = Celery("bench_celery", broker=os.environ["BENCH_REDIS_URL"], backend=None)
        app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)
        _client = None  # one connection per worker process, made in that process


        @app.task(name="bench.noop")
        def noop(key, i):
            """Push "i time" to the Redis list ``key``."""
            now = time.time()
            global _client
            if _client is None:
                _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
            _client.rpush(key, f"{i} {now!r}")
        ''',
    GCP_MODULE: '''
        """celery_gcp: the no-op task (written by benchmarks/transport.py)."""

        import os
        import time

        from celery_gcp import Celery

        app = Celery("bench_gcp")


        @app.task(name="bench.noop")
        def noop(key: str, i: int) -> None:
            """Append "key i time" to the file BENCH_RECORD_FILE."""
            now = time.time()
            with open(os.environ["BENCH_RECORD_FILE"], "a") as out:
                out.write(f"{key} {i} {now!r}\\n")
        ''',
}


def worker_environ(workdir: Path) -> dict[str, str]:
    """A worker's environment: bytecode read from (and written to) a private cache.

    As an installed package does: with ``PYTHONDONTWRITEBYTECODE=1`` (set on this machine) an
    editable checkout would otherwise be compiled again at every start, and site-packages not.
    The warm-up starts fill the cache for both sides.
    """
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(workdir / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def write_worker_modules(workdir: Path) -> None:
    """The modules the worker processes import (``-A``), each with only its own imports."""
    for name, source in WORKER_MODULES.items():
        (workdir / f"{name}.py").write_text(textwrap.dedent(source).lstrip())


@contextlib.contextmanager
def redis_server(workdir: Path, timeout: float = 30.0) -> Iterator[str]:
    """``redis-server`` on a free loopback port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install redis-server")
    port = free_port()
    process = Process([binary, "--port", str(port), "--bind", HOST, "--save", "",
                       "--appendonly", "no"], workdir / "redis.log", workdir)
    url = f"redis://{HOST}:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=RPC_TIMEOUT)

        def answers() -> bool:
            process.check_alive("redis-server")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(answers, timeout, "redis-server answering PING", interval=0.02)
        client.close()
        yield url
    finally:
        process.stop()


class CelerySide:
    """Celery 5 on Redis: a client app in this process, the worker started as a subprocess."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.redis = redis.Redis.from_url(url, socket_timeout=RPC_TIMEOUT)
        self.app = celery.Celery("bench_celery", broker=url, backend=None, set_as_current=False)
        self.app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)

        @self.app.task(name="bench.noop")  # type: ignore[untyped-decorator]
        def noop(key: str, i: int) -> None:
            """Sent from here, run by the worker."""

        self.noop = noop
        self.worker: Process | None = None

    def env(self) -> dict[str, str]:
        """The worker's environment."""
        path = os.pathsep.join(filter(None, [str(self.workdir), os.environ.get("PYTHONPATH")]))
        return {**worker_environ(self.workdir), "BENCH_REDIS_URL": self.url, "PYTHONPATH": path}

    def spawn(self, options: Sequence[str] = ()) -> Process:
        """Start ``celery worker`` (prefork, 2 processes); returns at once."""
        return Process([sys.executable, "-m", "celery", "-A", CELERY_MODULE, "worker",
                        "--pool", "prefork", "--concurrency", "2", "--loglevel", "WARNING",
                        *options], self.workdir / "celery-worker.log", self.workdir, self.env())

    def records(self, key: str) -> dict[int, float]:
        """``{i: time the task started}`` from the Redis list ``key``."""
        out: dict[int, float] = {}
        for item in self.redis.lrange(key, 0, -1):
            i, at = item.split()
            out[int(i)] = float(at)
        return out

    def wait(self, key: str, count: int, timeout: float) -> dict[int, float]:
        """Wait (bounded) until ``count`` tasks recorded to ``key``; their start times."""
        worker = self.worker

        def done() -> bool:
            if worker is not None:
                worker.check_alive("celery worker")
            return int(self.redis.llen(key)) >= count

        wait_for(done, timeout, f"{count} Celery tasks", interval=0.01)
        return self.records(key)

    def start(self) -> None:
        """Start the long-running worker and wait until it has run a task."""
        self.worker = self.spawn()
        key = f"warm-{uuid.uuid4().hex}"
        self.noop.delay(key, 0)
        self.wait(key, 1, 120.0)

    def stop(self) -> None:
        """Stop the worker."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        self.redis.close()


class OurSide:
    """The same no-op task under DevStack: its emulator process -> uvicorn worker here."""

    def __init__(self) -> None:
        self.records: dict[str, dict[int, float]] = {}
        self._lock = threading.Lock()
        self.emulator_pid = 0  # DevStack's emulator process, once started
        limits = {"max_dispatches_per_second": MAX_RATE,
                  "max_concurrent_dispatches": MAX_CONCURRENT}
        spread_queues = [f"bench-{k}" for k in range(SPREAD_QUEUES)]
        self.app = celery_gcp.Celery(
            "bench_dev", set_as_current=False, task_default_queue="bench-one",
            gcp_queues={name: dict(limits) for name in ["bench-one", *spread_queues]},
            task_routes={f"bench.noop_{k}": {"queue": q} for k, q in enumerate(spread_queues)})

        def make(name: str) -> Any:
            @self.app.task(name=name)
            def noop(key: str, i: int) -> None:
                now = time.time()
                with self._lock:
                    self.records.setdefault(key, {})[i] = now

            return noop

        self.noop = make("bench.noop")
        self.spread = [make(f"bench.noop_{k}") for k in range(SPREAD_QUEUES)]

    def wait(self, key: str, count: int, timeout: float) -> dict[int, float]:
        """Wait (bounded) until ``count`` distinct tasks recorded to ``key``."""
        wait_for(lambda: len(self.records.get(key, ())) >= count, timeout,
                 f"{count} celery_gcp tasks", interval=0.01)
        with self._lock:
            return dict(self.records.pop(key))


@dataclass(frozen=True)
class Run:
    """One end-to-end round: tasks/s from the first send to the last start, and send time."""

    rate: float
    sent: float  # seconds the group took to send
    seconds: float  # first send to last start
    cpu: float  # CPU seconds of the processes involved


def e2e_celery(c: CelerySide, n: int, redis_pid: int) -> Run:
    """Celery: send ``n`` tasks as a group, wait for all to run."""
    assert c.worker is not None
    key = f"e2e-{uuid.uuid4().hex}"
    pids = [c.worker.pid, redis_pid, os.getpid()]
    cpu = sum(map(cpu_seconds, pids)) + children_cpu(c.worker.pid)
    start = time.time()
    celery.group(c.noop.s(key, i) for i in range(n)).apply_async()
    sent = time.time() - start
    records = c.wait(key, n, 60.0 + n / 20)
    cpu = sum(map(cpu_seconds, pids)) + children_cpu(c.worker.pid) - cpu
    c.redis.delete(key)
    seconds = max(records.values()) - start
    return Run(n / seconds, sent, seconds, cpu)


def children_cpu(pid: int) -> float:
    """CPU seconds so far of the live children of ``pid`` (the prefork pool)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                total += cpu_seconds(int(stat.parent.name))
    return total


def e2e_ours(o: OurSide, n: int, spread_out: bool) -> Run:
    """Ours: send ``n`` tasks as a group (over four queues when ``spread_out``), wait for all."""
    key = f"e2e-{uuid.uuid4().hex}"
    tasks = o.spread if spread_out else [o.noop]
    pids = [os.getpid(), o.emulator_pid]
    cpu = sum(map(cpu_seconds, pids))
    start = time.time()
    celery_gcp.group(tasks[i % len(tasks)].s(key, i) for i in range(n)).apply_async()
    sent = time.time() - start
    records = o.wait(key, n, 60.0 + n / 20)
    cpu = sum(map(cpu_seconds, pids)) - cpu
    seconds = max(records.values()) - start
    return Run(n / seconds, sent, seconds, cpu)


def bench_e2e(mode: Mode, c: CelerySide, o: OurSide, redis_pid: int) -> list[Row]:
    """3a. Throughput end to end: Celery vs ours on one queue and on four."""
    n = mode.e2e_tasks
    sides: list[Callable[[], Run]] = [
        lambda: e2e_celery(c, n, redis_pid), lambda: e2e_ours(o, n, False),
        lambda: e2e_ours(o, n, True)]
    e2e_celery(c, 200, redis_pid)  # warm up both
    e2e_ours(o, 200, False)
    e2e_ours(o, 200, True)
    theirs, one, four = interleave(sides, mode.e2e_rounds)
    base = statistics.median(r.rate for r in theirs)
    rows = []
    for label, runs, queues in (("1 queue", one, 1), (f"{SPREAD_QUEUES} queues", four,
                                                      SPREAD_QUEUES)):
        rate = statistics.median(r.rate for r in runs)
        ratio, ratios = paired([r.rate for r in runs], [r.rate for r in theirs])
        ceiling = n / ((n - 50 * queues) / (MAX_RATE * queues))
        notes = [f"ours, {label}: rounds {spread([r.rate for r in runs])} tasks/s; the group "
                 f"was sent in {', '.join(f'{r.sent:.2f}' for r in runs)} s; emulator + worker + "
                 f"sender used {cpu_use(runs, n)}; the queues' cap "
                 f"({queues} x {MAX_RATE:g}/s, burst 50 each) allows at most {fmt(ceiling)} "
                 f"tasks/s; ratios to Celery {ratios}"]
        if queues == 1:
            notes.insert(0, f"Celery: rounds {spread([r.rate for r in theirs])} tasks/s; the "
                            f"group was sent in {', '.join(f'{r.sent:.2f}' for r in theirs)} "
                            f"s; worker + pool + redis-server + sender used "
                            f"{cpu_use(theirs, n)}")
        rows.append(Row(f"3a. {n:,} tasks, {label}", f"{fmt(rate)} tasks/s",
                        f"Celery {fmt(base)}/s", ratio, "ratio >= 0.5", ratio >= 0.5, notes))
    return rows


def cpu_use(runs: Sequence[Run], n: int) -> str:
    """CPU per task and cores kept busy, per round."""
    per_task = ", ".join(f"{r.cpu / n * 1e3:.2f}" for r in runs)
    cores = ", ".join(f"{r.cpu / r.seconds:.2f}" for r in runs)
    return f"{per_task} ms CPU/task ({cores} cores)"


def latencies(send: Callable[[str, int], Any], wait: Callable[[str, int, float],
              dict[int, float]], samples: int, gap: float) -> list[float]:
    """Sequential sends ``gap`` s apart; ms from before each send to its task's first line."""
    key = f"lat-{uuid.uuid4().hex}"
    sent: dict[int, float] = {}
    for i in range(samples):
        sent[i] = time.time()
        send(key, i)
        time.sleep(gap)  # the gap between sends is the point here
    started = wait(key, samples, 60.0)
    return [(started[i] - sent[i]) * 1e3 for i in range(samples)]


def bench_latency(mode: Mode, c: CelerySide, o: OurSide) -> Row:
    """3b. ``.delay()`` -> task start, p50 over all samples, in alternating blocks."""
    per_round = mode.latency_samples // mode.latency_rounds
    sides: list[Callable[[], list[float]]] = [
        lambda: latencies(lambda k, i: c.noop.delay(k, i), c.wait, per_round, mode.gap),
        lambda: latencies(lambda k, i: o.noop.delay(k, i), o.wait, per_round, mode.gap)]
    for side in sides:  # warm up
        side()
    theirs, mine = interleave(sides, mode.latency_rounds)
    t = sorted(x for block in theirs for x in block)
    m = sorted(x for block in mine for x in block)

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    ours_p50, base_p50 = statistics.median(m), statistics.median(t)
    notes = [f"{name}: p10 {pct(v, 0.1):.2f}, p50 {statistics.median(v):.2f}, p90 "
             f"{pct(v, 0.9):.2f}, max {v[-1]:.2f} ms ({len(v)} samples, sends {mode.gap * 1e3:g} "
             f"ms apart)" for name, v in (("Celery", t), ("ours", m))]
    return Row("3b. .delay() -> start, p50", f"{ours_p50:.2f} ms", f"Celery {base_p50:.2f} ms",
               ours_p50 / base_p50, "<= 5 ms", ours_p50 <= 5.0, notes)


def bench_against_celery(mode: Mode, workdir: Path) -> list[Row]:
    """3a and 3b: one Celery worker and one DevStack, both kept running."""
    with redis_server(workdir) as url:
        c = CelerySide(url, workdir)
        redis_pid = int(c.redis.info("server")["process_id"])
        o = OurSide()
        try:
            progress("3. starting the Celery worker")
            c.start()
            with environ(**{TASKS_HOST_VARIABLE: None, SCHEDULER_HOST_VARIABLE: None}), \
                    DevStack(o.app, port=0) as stack:
                o.emulator_pid = stack.emulator.pid  # DevStack started it: none was set
                progress(f"3a. {mode.e2e_tasks:,} tasks end to end")
                rows = bench_e2e(mode, c, o, redis_pid)
                progress("3b. .delay() -> start latency")
                rows.append(bench_latency(mode, c, o))
                stack.transport.close()
        finally:
            c.stop()
    return rows


# -- 3c. worker start -> first task ----------------------------------------------------------


LEAN = ("--without-mingle", "--without-gossip", "--without-heartbeat")


def start_celery(c: CelerySide, options: Sequence[str] = ()) -> float:
    """Seconds from spawning ``celery worker`` to its first line of a task already queued."""
    key = f"start-{uuid.uuid4().hex}"
    c.noop.delay(key, 0)
    spawned = time.time()
    c.worker = c.spawn(options)
    try:
        started = c.wait(key, 1, 60.0)[0]
    finally:
        c.worker.stop()
        c.worker = None
    c.redis.delete(key)
    return started - spawned


@dataclass
class StartOurs:
    """An emulator holding one task for a worker port nothing listens on yet."""

    emulator: Emulator
    app: celery_gcp.Celery
    noop: Any
    port: int
    workdir: Path
    record: Path

    def env(self) -> dict[str, str]:
        """The worker's environment: it verifies the emulator's OIDC tokens, as in production
        (its first request fetches the signing keys)."""
        return {**worker_environ(self.workdir), "BENCH_RECORD_FILE": str(self.record),
                "CELERY_GCP_TASK_AUTH": "oidc", "CELERY_GCP_SERVICE_ACCOUNT": SERVICE_ACCOUNT,
                "CELERY_GCP_OIDC_CERTS_URL": self.emulator.certs_url,
                "CELERY_GCP_TASK_BASE_URL": f"http://{HOST}:{self.port}"}

    def started(self, key: str) -> float | None:
        """When the task recorded to ``key`` started, if it did."""
        with contextlib.suppress(FileNotFoundError):
            for line in self.record.read_text().splitlines():
                recorded, _, at = line.split()
                if recorded == key:
                    return float(at)
        return None

    def run(self) -> float:
        """Seconds from spawning ``celery-gcp worker`` to the first line of its waiting task."""
        key = f"start-{uuid.uuid4().hex}"
        self.noop.delay(key, 0)
        time.sleep(0.1)  # the emulator has tried (and failed) to dispatch it at least once
        spawned = time.time()
        worker = Process([sys.executable, "-m", "celery_gcp.cli", "-A", GCP_MODULE, "worker",
                          "--host", HOST, "--port", str(self.port)],
                         self.workdir / "gcp-worker.log", self.workdir, self.env())
        try:
            def done() -> bool:
                worker.check_alive("celery-gcp worker")
                return self.started(key) is not None

            wait_for(done, 60.0, "the celery_gcp worker's first task", interval=0.005)
        finally:
            worker.stop()
        at = self.started(key)
        assert at is not None
        return at - spawned


def bench_start(mode: Mode, workdir: Path) -> Row:
    """3c. Worker process start -> first task run: ``celery worker`` vs ``celery-gcp worker``."""
    port = free_port()
    with redis_server(workdir) as url, Emulator(host=HOST) as emulator, environ(
            **{TASKS_HOST_VARIABLE: emulator.address, SCHEDULER_HOST_VARIABLE: None}):
        app = celery_gcp.Celery("bench_start", set_as_current=False, gcp_project="bench",
                                gcp_location="local", task_base_url=f"http://{HOST}:{port}",
                                task_default_queue="bench-start",
                                gcp_service_account=SERVICE_ACCOUNT)  # tasks carry tokens

        @app.task(name="bench.noop")
        def noop(key: str, i: int) -> None:
            """Sent from here, run by the worker process."""

        transport = app.transport
        assert isinstance(transport, CloudTasksTransport)
        queue = gcp.queue_path(app, "bench-start")
        gap = duration_pb2.Duration(nanos=int(RETRY_GAP * 1e9))
        transport.client().create_queue(
            parent=queue.rsplit("/queues/", 1)[0], timeout=RPC_TIMEOUT,
            queue={"name": queue,
                   "rate_limits": {"max_dispatches_per_second": MAX_RATE,
                                   "max_concurrent_dispatches": MAX_CONCURRENT},
                   "retry_config": {"max_attempts": -1, "min_backoff": gap,
                                    "max_backoff": gap}})
        ours = StartOurs(emulator, app, noop, port, workdir, workdir / "gcp-records.txt")
        c = CelerySide(url, workdir)
        try:
            start_celery(c)  # warm up: page cache, bytecode
            ours.run()
            theirs, mine, lean = interleave(
                [lambda: start_celery(c), ours.run, lambda: start_celery(c, LEAN)],
                mode.start_rounds)
        finally:
            c.stop()
            app.close()
    a, b = statistics.median(mine), statistics.median(theirs)
    ratio, ratios = paired(mine, theirs)
    notes = [f"rounds: celery-gcp worker {spread([x * 1e3 for x in mine])} ms; celery worker "
             f"{spread([x * 1e3 for x in theirs])} ms; ratios {ratios}",
             f"ours: the task waits in an embedded emulator whose queue retries every "
             f"{RETRY_GAP * 1e3:g} ms (retry_config min_backoff = max_backoff = {RETRY_GAP:g} s, "
             f"max_attempts -1) until uvicorn answers on its port; Celery: the task waits in "
             f"Redis; celery worker with its defaults (mingle, gossip, heartbeat on)",
             f"reference: celery worker {' '.join(LEAN)} took {fmt(statistics.median(lean) * 1e3)} "
             f"ms (rounds {spread([x * 1e3 for x in lean])}); both sides read bytecode from a "
             f"private cache filled by a warm-up start"]
    return Row("3c. worker start -> task", f"{a * 1e3:,.0f} ms", f"Celery {b * 1e3:,.0f} ms",
               ratio, "ratio <= 1", ratio <= 1.0, notes)


# -- report ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print the report."""
    parser = argparse.ArgumentParser(description="celery_gcp transport benchmarks")
    parser.add_argument("--quick", action="store_true", help="a smoke run (under a minute)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                             check=False).stdout.split()[2:3] if shutil.which(
                                 "redis-server") else ["(missing)"]
    print(f"celery_gcp transport benchmarks ({mode.name}: {mode.rounds} alternating rounds per "
          f"side for 1-2, {mode.e2e_rounds} for 3a, {mode.start_rounds} for 3c; medians) | "
          f"Python {sys.version.split()[0]}, celery {celery.__version__}, redis-server "
          f"{' '.join(version)}, grpcio {grpc.__version__}, {os.cpu_count()} CPUs\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="celery-gcp-transport-bench-") as tmp:
        workdir = Path(tmp)
        write_worker_modules(workdir)
        rows = bench_sending(mode, workdir)
        rows += bench_against_celery(mode, workdir)
        progress("3c. worker start -> first task")
        rows.append(bench_start(mode, workdir))
    ok = report(rows, name_width=30, target_width=13)
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
