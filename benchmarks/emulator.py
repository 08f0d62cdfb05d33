"""Benchmarks of the local Cloud Tasks emulator (``celery_gcp.emulator``).

Run ``python benchmarks/emulator.py`` (about six minutes) or ``python benchmarks/emulator.py
--quick`` (a smoke run, under a minute). ``--strict`` exits with status 1 when a target is
missed. Every emulator runs as its own process, bound to 127.0.0.1; tasks are created with the
official ``CloudTasksAsyncClient`` (``grpc.aio``), a bounded number in flight, and delivered to
a real HTTP handler (a raw ASGI app under uvicorn, in this process) that answers 200 and records
when each request arrived. Task bodies and headers are real celery_gcp messages (~100 bytes).

1. Throughput: N tasks created and delivered, counted from the first create to the last
   delivery; ours vs ``gcloud-tasks-emulator`` 0.6.2 (its own virtualenv, through
   ``tests/interop/gcloud_tasks_emulator.py``) in alternating rounds, a fresh queue each round.
   Target: ours / theirs >= 2.
2. Sustained dispatch on one queue at the highest allowed limits (500/s, 5000 concurrent):
   tasks created on a paused queue, the queue resumed, the rate measured after the first 10% of
   arrivals. Target >= 500/s, which is also the limiter's cap (so within 0.1%: the jitter of
   arrival times), so the same tasks are also spread over four queues to see whether the
   machinery has headroom above one queue's cap.
3. Rate limit accuracy: the same with ``max_dispatches_per_second=50``, measured over at least
   5 s after the initial burst. Target within 5% of 50/s.
4. Resident memory (``VmRSS``) of ``celery-gcp emulator`` with 100,000 pending tasks on a paused
   queue, before and after. Target <= 300 MB. gcloud-tasks-emulator holding the same tasks is
   measured as a reference.

``--quick`` does less of each: 1,000 tasks and one round per side for 1. (gcloud-tasks-emulator
needs about 9 s per round of 5,000), 1,000 tasks for 2. without the four-queue check, 300 tasks
(a 5.4 s window) for 3., and 10,000 tasks for 4., projected to 100,000 from the per-task cost.
Linux only (``/proc``). gcloud-tasks-emulator's virtualenv is built on first use (from PyPI) by
``ensure_venv``, as the interop tests do; build it ahead with ``python
tests/interop/gcloud_tasks_emulator.py ensure-venv``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the interop harness lives in tests/interop

import grpc  # noqa: E402
from common import Row, fmt, progress, report  # noqa: E402
from google.cloud import tasks_v2  # noqa: E402

import celery_gcp  # noqa: E402
from celery_gcp.emulator import async_tasks_client  # noqa: E402
from celery_gcp.testing import serve, task_path  # noqa: E402
from celery_gcp.transport import MemoryTransport  # noqa: E402
from tests.interop.gcloud_tasks_emulator import (  # noqa: E402
    REQUIREMENT,
    GcloudTasksEmulator,
    ensure_venv,
    unique_queue_id,
)

LOCATION = "projects/bench/locations/local"
MAX_RATE = 500.0  # the highest max_dispatches_per_second Cloud Tasks accepts
MAX_CONCURRENT = 5000  # the highest max_concurrent_dispatches
BURST = 500  # max_burst_size the emulator gives a 500/s queue: the rate rounded up
RAMP = BURST // 10  # tokens a resumed queue starts with (it ramps up, as Cloud Tasks does)
RPC_TIMEOUT = 30.0  # every RPC's own deadline
RequestPb: Any = tasks_v2.CreateTaskRequest.pb()


@dataclass(frozen=True)
class Mode:
    """How much work each benchmark does."""

    name: str
    throughput_tasks: int
    throughput_rounds: int
    sustained_tasks: int
    rate_tasks: int
    memory_tasks: int
    memory_baseline: bool  # also fill gcloud-tasks-emulator, as a reference
    spread_check: bool  # also spread the sustained run over four queues
    concurrency: int = 64  # create_task calls in flight


FULL = Mode("full", throughput_tasks=5000, throughput_rounds=3, sustained_tasks=5000,
            rate_tasks=600, memory_tasks=100_000, memory_baseline=True, spread_check=True)
QUICK = Mode("quick", throughput_tasks=1000, throughput_rounds=1, sustained_tasks=1000,
             rate_tasks=300, memory_tasks=10_000, memory_baseline=False, spread_check=False)
MEMORY_TARGET_TASKS = 100_000


# -- the HTTP handler ------------------------------------------------------------------------


class Recorder:
    """A raw ASGI app that answers 200 and records arrival times (``perf_counter``).

    Only requests under the current ``prefix`` (see :meth:`expect`) count; task ids come from
    the ``X-Celery-Task-Id`` header, so a task delivered twice counts once (and is tallied in
    ``duplicates``; requests outside the prefix are tallied in ``stray``).
    """

    def __init__(self) -> None:
        self.prefix = "/"
        self.expected = 0
        self.arrivals: list[float] = []
        self.ids: set[bytes] = set()
        self.duplicates = 0
        self.stray = 0
        self._done = threading.Event()

    def expect(self, prefix: str, count: int) -> None:
        """Start recording requests under ``prefix``; done once ``count`` distinct ones came."""
        self.prefix, self.expected = prefix, count
        self.arrivals, self.ids = [], set()
        self._done.clear()

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        """Read the request, answer ``200``, record it."""
        if scope["type"] != "http":
            return
        now = time.perf_counter()
        while (await receive()).get("more_body", False):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        if not scope["path"].startswith(self.prefix):
            self.stray += 1
            return
        task_id = next((v for k, v in scope["headers"] if k == b"x-celery-task-id"), b"")
        if task_id in self.ids:
            self.duplicates += 1
            return
        self.ids.add(task_id)
        self.arrivals.append(now)
        if len(self.arrivals) >= self.expected:
            self._done.set()

    async def wait(self, timeout: float) -> list[float]:
        """Wait (bounded) until every expected request came; their arrival times, in order."""
        if not await asyncio.to_thread(self._done.wait, timeout):
            raise TimeoutError(f"{len(self.arrivals)} of {self.expected} tasks were delivered "
                               f"within {timeout:g} s")
        return sorted(self.arrivals)


# -- messages and the client -----------------------------------------------------------------

APP = celery_gcp.Celery("bench", broker_url="memory://")


@APP.task(name="bench.process_order")
def process_order(order_id: int, customer: str, sku: str, quantity: int, note: str) -> None:
    """A typical task: its keyword arguments make a ~100-byte JSON body."""


def task_requests(queue: str, base_url: str, count: int) -> Iterator[Any]:
    """``CreateTaskRequest`` messages (proto-plus, wrapping raw protobuf) for ``count`` tasks.

    Each carries a real celery_gcp message: its JSON body and its ``X-Celery-*`` headers.
    """
    transport = APP.transport
    assert isinstance(transport, MemoryTransport)
    for i in range(count):
        process_order.delay(order_id=100_000 + i, customer="customer-0042@example.com",
                            sku="SKU-4711-BLUE-XL", quantity=3, note="gift wrap, leave at door")
        [message] = transport.pop()
        pb = RequestPb(parent=queue)
        request = pb.task.http_request
        request.url = base_url + task_path(APP, message.task)
        request.http_method = tasks_v2.HttpMethod.POST
        request.body = message.body
        request.headers.update(message.http_headers())
        yield tasks_v2.CreateTaskRequest.wrap(pb)


async def create_tasks(client: Any, requests: Iterable[Any], concurrency: int,
                       timeout: float) -> int:
    """Create the tasks with at most ``concurrency`` calls in flight; how many were created."""
    pending = iter(requests)
    created = 0

    async def worker() -> None:
        nonlocal created
        for request in pending:  # the workers share one iterator
            await client.create_task(request=request, timeout=RPC_TIMEOUT)
            created += 1

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout)
    return created


async def new_queue(client: Any, rate: float, concurrent: int, *, paused: bool) -> str:
    """Create a queue never used before, with these limits; its name."""
    name = f"{LOCATION}/queues/{unique_queue_id('bench')}"
    await client.create_queue(parent=LOCATION, timeout=RPC_TIMEOUT, queue={
        "name": name,
        "rate_limits": {"max_dispatches_per_second": rate,
                        "max_concurrent_dispatches": concurrent},
    })
    if paused:
        await client.pause_queue(name=name, timeout=RPC_TIMEOUT)
    return name


# -- the emulators ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One emulator process: its name in the report, gRPC address and process id."""

    name: str
    address: str
    pid: int


class OurEmulator:
    """``python -m celery_gcp.cli emulator --quiet`` in a subprocess, on free loopback ports
    (quiet, as gcloud-tasks-emulator runs here: neither logs a line per task)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self.address = ""
        self.http_url = ""

    @property
    def pid(self) -> int:
        """The emulator's process id."""
        assert self._process is not None, "not started"
        return self._process.pid

    @property
    def side(self) -> Side:
        """This emulator as one side of a benchmark."""
        return Side("ours", self.address, self.pid)

    def log_text(self) -> str:
        """What it printed so far (its addresses, then warnings if any)."""
        if self._workdir is None:
            return ""
        return (self._workdir / "emulator.log").read_text(errors="replace")

    def start(self, timeout: float = 60.0) -> OurEmulator:
        """Start it and wait (bounded) until it prints its addresses."""
        self._workdir = Path(tempfile.mkdtemp(prefix="celery-gcp-emulator-"))
        with open(self._workdir / "emulator.log", "wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "celery_gcp.cli", "emulator", "--quiet", "--host",
                 "127.0.0.1", "--port", "0", "--http-port", "0"],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            grpc_at = re.search(r"CLOUD_TASKS_EMULATOR_HOST=(\S+)", text)
            http_at = re.search(r"status:\s+(http://\S+)/status", text)
            if grpc_at and http_at:
                self.address, self.http_url = grpc_at[1], http_at[1]
                return self
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"celery-gcp emulator did not start:\n{text[-3000:]}")
            time.sleep(0.05)  # polling its log, bounded by the deadline

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a graceful stop), then SIGKILL after ``timeout``; removes its log."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> OurEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of a process, in KiB, from ``/proc/PID/status``."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


@contextlib.contextmanager
def theirs_running() -> Iterator[GcloudTasksEmulator]:
    """gcloud-tasks-emulator from its virtualenv, quiet (it logs four lines per task otherwise).

    HTTP tasks go to their own ``http_request.url``, so its App Engine target is not used.
    """
    with GcloudTasksEmulator(python=ensure_venv(), extra_args=["--quiet"]) as emulator:
        yield emulator


# -- results ---------------------------------------------------------------------------------


def steady_rate(arrivals: Sequence[float], skip: int) -> tuple[float, float]:
    """Deliveries per second after the first ``skip`` arrivals, and the window's length."""
    window = arrivals[-1] - arrivals[skip]
    return (len(arrivals) - 1 - skip) / window, window


# -- 1. throughput ---------------------------------------------------------------------------

THROUGHPUT_QUEUES = 4


@dataclass(frozen=True)
class Throughput:
    """One round: tasks/s end to end, when creating ended, and the emulator's CPU per task."""

    rate: float
    create_seconds: float
    end_to_end: float
    cpu_ms: float


async def throughput_round(side: Side, recorder: Recorder, base_url: str, count: int,
                           concurrency: int, timeout: float) -> Throughput:
    """Create ``count`` tasks over fresh running queues; time until the last one arrived.

    The tasks are spread over :data:`THROUGHPUT_QUEUES` queues on both sides: one queue of
    ours is held to Cloud Tasks' 500 dispatches/s, which the other emulator ignores.
    """
    client = async_tasks_client(side.address)
    try:
        queues = [await new_queue(client, MAX_RATE, MAX_CONCURRENT, paused=False)
                  for _ in range(THROUGHPUT_QUEUES)]
        prefix = f"/{uuid.uuid4().hex}"
        share = count // len(queues)
        per_queue = [list(task_requests(q, base_url + prefix, share)) for q in queues]
        requests = [r for batch in zip(*per_queue, strict=True) for r in batch]  # interleaved
        count = len(requests)
        recorder.expect(prefix, count)
        cpu = cpu_seconds(side.pid)
        start = time.perf_counter()
        await create_tasks(client, requests, concurrency, timeout)
        created = time.perf_counter()
        arrivals = await recorder.wait(max(1.0, start + timeout - created))
        cpu = cpu_seconds(side.pid) - cpu
    finally:
        await client.transport.close()
    end = arrivals[-1] - start
    return Throughput(count / end, created - start, end, cpu / count * 1e3)


def bench_throughput(mode: Mode, recorder: Recorder, base_url: str, ours: Side,
                     theirs: Side) -> Row:
    """Ours vs gcloud-tasks-emulator, alternating rounds (the order flips every round)."""
    count, timeout = mode.throughput_tasks, 60.0 + mode.throughput_tasks / 20
    samples: dict[str, list[Throughput]] = {ours.name: [], theirs.name: []}
    for side in (ours, theirs):  # warm up both: connections, code paths
        asyncio.run(throughput_round(side, recorder, base_url, 50, mode.concurrency, 60.0))
    for r in range(mode.throughput_rounds):
        for side in ((ours, theirs) if r % 2 == 0 else (theirs, ours)):
            samples[side.name].append(asyncio.run(throughput_round(
                side, recorder, base_url, count, mode.concurrency, timeout)))
    ours_rate = statistics.median(s.rate for s in samples[ours.name])
    theirs_rate = statistics.median(s.rate for s in samples[theirs.name])
    ratio = ours_rate / theirs_rate
    notes = [f"{name}: rounds {', '.join(fmt(s.rate) for s in rounds)} tasks/s; creating ended "
             f"at {', '.join(f'{s.create_seconds:.2f}' for s in rounds)} s, the last delivery "
             f"at {', '.join(f'{s.end_to_end:.2f}' for s in rounds)} s; emulator CPU "
             f"{', '.join(f'{s.cpu_ms:.2f}' for s in rounds)} ms/task"
             for name, rounds in samples.items()]
    ceiling = THROUGHPUT_QUEUES * MAX_RATE
    notes.append(f"spread over {THROUGHPUT_QUEUES} queues on both sides; ours obeys each "
                 f"queue's limit ({MAX_RATE:g}/s, the highest Cloud Tasks allows; theirs "
                 f"ignores it), so at most {fmt(ceiling)} tasks/s")
    return Row(f"1. throughput, {count:,} tasks", f"{fmt(ours_rate)} tasks/s",
               f"theirs {fmt(theirs_rate)}/s", ratio, "ratio >= 2", ratio >= 2.0, notes)


# -- 2 and 3. dispatch rates on paused-then-resumed queues ------------------------------------


@dataclass(frozen=True)
class Dispatch:
    """Arrival times after resuming the queues, and the emulator's CPU meanwhile (s)."""

    arrivals: list[float]
    resumed: float
    cpu: float


async def dispatch_run(side: Side, recorder: Recorder, base_url: str, count: int, rate: float,
                       queues: int, concurrency: int) -> Dispatch:
    """Create ``count`` tasks over ``queues`` paused queues, resume them all, wait for all."""
    client = async_tasks_client(side.address)
    try:
        names = [await new_queue(client, rate, MAX_CONCURRENT, paused=True)
                 for _ in range(queues)]
        prefix = f"/{uuid.uuid4().hex}"
        share = count // queues
        requests = [r for k, name in enumerate(names) for r in task_requests(
            name, base_url + prefix, share + (count - share * queues if k == 0 else 0))]
        await create_tasks(client, requests, concurrency, 60.0 + count / 20)
        recorder.expect(prefix, count)
        cpu = cpu_seconds(side.pid)
        resumed = time.perf_counter()
        await asyncio.gather(*(client.resume_queue(name=n, timeout=RPC_TIMEOUT) for n in names))
        # Generous: a tenth of the intended rate, and never below a minute.
        arrivals = await recorder.wait(60.0 + count / (rate * queues) * 10)
        cpu = cpu_seconds(side.pid) - cpu
    finally:
        await client.transport.close()
    return Dispatch(arrivals, resumed, cpu)


def bench_sustained(mode: Mode, recorder: Recorder, base_url: str, ours: Side) -> Row:
    """One queue at 500/s and 5000 concurrent; then four, to see the machinery's headroom."""
    count = mode.sustained_tasks
    one = dispatch_run(ours, recorder, base_url, count, MAX_RATE, 1, mode.concurrency)
    run = asyncio.run(one)
    skip = count // 10
    rate, window = steady_rate(run.arrivals, skip)
    total = run.arrivals[-1] - run.resumed
    notes = [
        f"cap {MAX_RATE:g}/s (token bucket, burst {BURST}, {RAMP} on resume): "
        f"{rate / MAX_RATE:.1%} of it over {window:.2f} s after the first {skip:,} arrivals; "
        f"all {count:,} in {total:.2f} s; "
        f"emulator CPU {run.cpu / count * 1e3:.2f} ms/task, {run.cpu / total:.0%} of a core",
    ]
    if mode.spread_check:
        four = asyncio.run(dispatch_run(ours, recorder, base_url, count, MAX_RATE, 4,
                                        mode.concurrency))
        rate4, window4 = steady_rate(four.arrivals, skip)
        total4 = four.arrivals[-1] - four.resumed
        verdict = ("the limiter, not the machinery, bounds one queue" if rate4 > MAX_RATE * 1.2
                   else "the machinery, not the limiter, is the bottleneck")
        notes.append(
            f"the same {count:,} tasks over 4 queues (cap 4 x {MAX_RATE:g}/s): {fmt(rate4)} "
            f"tasks/s over {window4:.2f} s, emulator CPU {four.cpu / count * 1e3:.2f} ms/task, "
            f"{four.cpu / total4:.0%} of a core -> {verdict}")
    elif run.cpu / total > 0.9:
        notes.append("the emulator used a whole core: the machinery, not the limiter, is the "
                     "bottleneck")
    # The limiter holds the rate at the cap, so the figure lands on either side of 500 by
    # the jitter of arrival times (a ms in a 9 s window): within 0.1% of it counts as met.
    return Row("2. sustained, 1 queue", f"{rate:,.1f} tasks/s", f"cap {MAX_RATE:g}/s",
               rate / MAX_RATE, ">= 500/s -0.1%", rate >= MAX_RATE * 0.999, notes)


def bench_rate_limit(mode: Mode, recorder: Recorder, base_url: str, ours: Side) -> Row:
    """``max_dispatches_per_second=50``: the rate over >= 5 s after the initial burst."""
    count, limit = mode.rate_tasks, 50.0
    run = asyncio.run(dispatch_run(ours, recorder, base_url, count, limit, 1, mode.concurrency))
    skip = max(count // 10, 10)  # well past the 5 tokens a resumed 50/s queue starts with
    rate, window = steady_rate(run.arrivals, skip)
    burst = sum(1 for t in run.arrivals if t - run.arrivals[0] < 0.01)
    error = abs(rate - limit) / limit
    long_enough = ">=" if window >= 5.0 else "NOT >="
    notes = [f"window {window:.2f} s after the first {skip} arrivals ({long_enough} 5 s); "
             f"{burst} arrived within 10 ms of the first (5 tokens on resume); error {error:.2%}"]
    return Row("3. rate limit 50/s", f"{rate:.2f} tasks/s", f"limit {limit:g}/s", rate / limit,
               "50 +- 5%", error <= 0.05 and window >= 5.0, notes)


# -- 4. memory -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """RSS before and after creating the tasks (KiB), the peak, and how long creating took."""

    before: int
    after: int
    peak: int
    seconds: float


async def fill(side: Side, count: int, base_url: str, concurrency: int) -> Memory:
    """Create ``count`` tasks on a fresh paused queue; the process's RSS before and after."""
    client = async_tasks_client(side.address)
    try:
        queue = await new_queue(client, MAX_RATE, MAX_CONCURRENT, paused=True)
        await asyncio.sleep(0.5)  # let the server settle after the first RPCs
        before, _ = memory_kib(side.pid)
        start = time.perf_counter()
        created = await create_tasks(client, task_requests(queue, base_url, count),
                                     concurrency, 120.0 + count / 100)
        seconds = time.perf_counter() - start
        await asyncio.sleep(0.5)
        after, peak = memory_kib(side.pid)
    finally:
        await client.transport.close()
    if created != count:
        raise RuntimeError(f"created {created} of {count} tasks")
    return Memory(before, after, peak, seconds)


def bench_memory(mode: Mode, base_url: str) -> Row:
    """RSS of ``celery-gcp emulator`` (fresh, no data dir) with ``memory_tasks`` pending."""
    count = mode.memory_tasks
    with OurEmulator() as ours:
        mine = asyncio.run(fill(ours.side, count, base_url, mode.concurrency))
        pending = count_pending(ours.http_url)
    if pending != count:
        raise RuntimeError(f"the emulator holds {pending} tasks, not {count}")
    per_task = (mine.after - mine.before) * 1024 / count
    projected = (mine.before * 1024 + per_task * MEMORY_TARGET_TASKS) / 1e6
    notes = [f"ours: {mine.before / 1024:.1f} MiB before, {mine.after / 1024:.1f} MiB after "
             f"(peak {mine.peak / 1024:.1f} MiB), {fmt(per_task)} bytes per task; created at "
             f"{fmt(count / mine.seconds)} tasks/s"]
    baseline = "-"
    ratio = None
    if mode.memory_baseline:
        progress(f"4. filling gcloud-tasks-emulator with {count:,} tasks (reference)")
        with theirs_running() as theirs:
            other = asyncio.run(fill(Side("theirs", theirs.address, theirs.pid), count,
                                     base_url, mode.concurrency))
        other_per_task = (other.after - other.before) * 1024 / count
        baseline = f"theirs {other.after * 1024 / 1e6:.0f} MB"
        ratio = mine.after / other.after
        notes.append(f"theirs: {other.before / 1024:.1f} MiB before, {other.after / 1024:.1f} "
                     f"MiB after, {fmt(other_per_task)} bytes per task (reference, no target)")
    if count == MEMORY_TARGET_TASKS:
        figure = mine.after * 1024 / 1e6
        return Row(f"4. RSS, {count:,} pending", f"{figure:.0f} MB", baseline, ratio,
                   "<= 300 MB", figure <= 300, notes)
    notes.append(f"projected for {MEMORY_TARGET_TASKS:,} tasks from {count:,}: "
                 f"{projected:.0f} MB")
    return Row(f"4. RSS, {count:,} pending", f"~{projected:.0f} MB", baseline, ratio,
               "<= 300 MB", projected <= 300, notes)


def count_pending(http_url: str) -> int:
    """The number of tasks the emulator holds, from its ``/status`` view (after RSS reads)."""
    import httpx

    status = httpx.get(f"{http_url}/status", timeout=60.0, trust_env=False).json()
    return sum(int(q["taskCount"]) for q in status["queues"])


# -- report ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator benchmarks and print the report."""
    parser = argparse.ArgumentParser(description="celery_gcp emulator benchmarks")
    parser.add_argument("--quick", action="store_true", help="a smoke run (under a minute)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    print(f"celery_gcp emulator benchmarks ({mode.name}: {mode.throughput_rounds} alternating "
          f"round(s) per side for 1., medians; {mode.concurrency} creates in flight) | Python "
          f"{sys.version.split()[0]}, grpcio {grpc.__version__}, baseline {REQUIREMENT}, "
          f"{os.cpu_count()} CPUs\n", flush=True)
    recorder = Recorder()
    rows: list[Row] = []
    with serve(recorder) as base_url:
        progress("1. throughput")
        with OurEmulator() as ours, theirs_running() as theirs:
            rows.append(bench_throughput(mode, recorder, base_url, ours.side,
                                         Side("theirs", theirs.address, theirs.pid)))
        with OurEmulator() as ours:
            progress("2. sustained dispatch")
            rows.append(bench_sustained(mode, recorder, base_url, ours.side))
            progress("3. rate limit accuracy")
            rows.append(bench_rate_limit(mode, recorder, base_url, ours.side))
        progress(f"4. memory with {mode.memory_tasks:,} pending tasks")
        rows.append(bench_memory(mode, base_url))
    ok = report(rows)
    print(f"\n  deliveries counted once per task: {recorder.duplicates} duplicate(s), "
          f"{recorder.stray} outside the round that expected them (warm-up rounds included)")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
