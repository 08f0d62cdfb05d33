"""Benchmarks: celery_gcp against Celery 5 and plain FastAPI, each pair measured in one run.

Run ``python benchmarks/run.py`` (about a minute) or ``python benchmarks/run.py --quick`` (a few
seconds); ``--smoke`` runs every benchmark at the smallest sizes, to check that the script works
(the test suite does; its figures mean nothing). The sides of every benchmark run in alternating
rounds (the order rotates each round), after a warm-up, and each side's median round is reported
with the ratio celery_gcp/baseline, the target and whether it was met. ``--strict`` exits with
status 1 when a target is missed.

1. CPU time per ``add.delay(2, 3)``: celery_gcp's memory transport vs Celery's ``memory://``;
   then (1b) the same ``.delay()`` with OpenTelemetry's SDK loaded and no span current vs with
   no OpenTelemetry module loaded: a send looks for a trace to hand on, and that must cost
   nothing measurable.
2. Worker throughput in-process (httpx over ASGI): a no-op task endpoint vs a plain FastAPI
   endpoint with the same body, for an ``async def`` and a ``def`` task (caller verification
   off, as the plain endpoint has none); then the async task with its OIDC token checked
   (claims, allowed email; keys cached) vs unchecked: at most 15% slower, with the caller
   reusing one token (c) and with a new token, so an RSA signature check, per request (d).
3. Import time of ``from celery_gcp import Celery`` vs ``import fastapi`` in fresh interpreters,
   and that importing the app loads no Google Cloud client or gRPC module.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import celery  # type: ignore[import-untyped]
import fastapi
import httpx
from common import fmt, interleave, paired, post_many
from fastapi import Body, FastAPI
from typing_extensions import TypedDict

import celery_gcp
from celery_gcp.transport import MemoryTransport

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("google.cloud", "google.api_core", "grpc")
# Prints the import's own duration too; "sys" (already loaded) is the empty baseline.
IMPORT = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
# What each side imports: the app (the package itself loads its names on first use), FastAPI,
# and nothing new (interpreter start-up, subtracted).
STATEMENTS = ("import sys", "from celery_gcp import Celery", "import fastapi")


@dataclass(frozen=True)
class Mode:
    """How much work each benchmark does."""

    rounds: int
    delay_calls: int
    requests: int
    import_runs: int


FULL = Mode(rounds=11, delay_calls=1500, requests=500, import_runs=21)
QUICK = Mode(rounds=3, delay_calls=300, requests=150, import_runs=3)
SMOKE = Mode(rounds=1, delay_calls=10, requests=5, import_runs=1)


@dataclass(frozen=True)
class Result:
    """One benchmark: the median of each side, in ``unit``, and its target ratio."""

    name: str
    unit: str
    ours: float
    baseline: float
    baseline_name: str
    target: float
    lower_is_better: bool
    spread: tuple[tuple[float, float], tuple[float, float]]
    paired_ratio: float | None = None  # the median of the per-round ratios
    note: str = ""

    @property
    def ratio(self) -> float:
        """celery_gcp / baseline: the median of the per-round ratios where the sides ran in
        rounds, else the ratio of the medians."""
        return self.paired_ratio if self.paired_ratio is not None else self.ours / self.baseline

    @property
    def met(self) -> bool:
        """Whether the ratio is within the target."""
        return self.ratio <= self.target if self.lower_is_better else self.ratio >= self.target


def compare(name: str, unit: str, ours: list[float], baseline: list[float], baseline_name: str,
            target: float, lower_is_better: bool) -> Result:
    """Summarise two sample lists of alternating rounds: each side's median, and the median of
    the per-round ratios (immune to the machine speeding up or slowing down across the run)."""
    return Result(name, unit, statistics.median(ours), statistics.median(baseline),
                  baseline_name, target, lower_is_better,
                  ((min(ours), max(ours)), (min(baseline), max(baseline))),
                  paired(ours, baseline)[0])


# -- 1. CPU time per .delay() ----------------------------------------------------------------


def bench_delay(mode: Mode) -> Result:
    """µs of CPU per ``add.delay(2, 3)``: celery_gcp (memory transport) vs Celery (memory://)."""
    ours_app = celery_gcp.Celery("bench", broker_url="memory://")

    @ours_app.task(name="bench.add")
    def add(x: int, y: int) -> int:
        return x + y

    theirs_app = celery.Celery("bench", broker="memory://", backend=None, set_as_current=False)

    @theirs_app.task(name="bench.add")  # type: ignore[untyped-decorator]
    def celery_add(x: int, y: int) -> int:
        return x + y

    transport = ours_app.transport
    assert isinstance(transport, MemoryTransport)

    def purge_celery() -> int:
        with theirs_app.connection_for_write() as conn:
            return int(conn.default_channel.queue_purge("celery") or 0)

    def run_ours() -> float:
        start = time.process_time()
        for _ in range(mode.delay_calls):
            add.delay(2, 3)
        elapsed = time.process_time() - start
        if len(transport.sent) != mode.delay_calls:
            raise RuntimeError(f"celery_gcp recorded {len(transport.sent)} messages")
        transport.clear()
        return elapsed / mode.delay_calls * 1e6

    def run_theirs() -> float:
        start = time.process_time()
        for _ in range(mode.delay_calls):
            celery_add.delay(2, 3)
        elapsed = time.process_time() - start
        published = purge_celery()
        if published != mode.delay_calls:
            raise RuntimeError(f"Celery's memory:// queue held {published} messages")
        return elapsed / mode.delay_calls * 1e6

    purge_celery()
    for side in (run_ours, run_theirs):  # warm up: caches, connection pool, producer
        side()
    ours, theirs = interleave([run_ours, run_theirs], mode.rounds)
    return compare("1. CPU per .delay()", "µs/call", ours, theirs, "Celery 5",
                   target=0.20, lower_is_better=True)


def bench_trace_lookup(mode: Mode) -> Result:
    """µs of CPU per ``.delay()`` with OpenTelemetry's SDK loaded (no span) vs not."""
    import opentelemetry.sdk.trace  # noqa: F401 - as an app that sets up tracing loads it

    app = celery_gcp.Celery("bench_trace", broker_url="memory://")

    @app.task(name="bench.add")
    def add(x: int, y: int) -> int:
        return x + y

    transport = app.transport
    assert isinstance(transport, MemoryTransport)
    name = "opentelemetry.sdk.trace"

    def side(hidden: bool) -> float:
        module = sys.modules.pop(name) if hidden else None
        try:
            start = time.process_time()
            for _ in range(mode.delay_calls):
                add.delay(2, 3)
            elapsed = time.process_time() - start
        finally:
            if module is not None:
                sys.modules[name] = module
        transport.clear()
        return elapsed / mode.delay_calls * 1e6

    for hidden in (False, True):
        side(hidden)
    imported, absent = interleave([partial(side, False), partial(side, True)], mode.rounds)
    return compare("1b. .delay(), OpenTelemetry SDK, no span", "µs/call", imported, absent,
                   "no SDK", target=1.05, lower_is_better=True)


# -- 2. Worker throughput ----------------------------------------------------------------------


class NoopArgs(TypedDict):
    """The plain endpoint's body: the same schema as the task's."""

    x: int


SERVICE_ACCOUNT = "tasks@bench.iam.gserviceaccount.com"


def noop_tasks(app: celery_gcp.Celery) -> None:
    """The no-op tasks, async and sync."""

    @app.task(name="bench.noop")
    async def noop(x: int) -> None:
        """Do nothing, asynchronously."""

    @app.task(name="bench.noop_sync")
    def noop_sync(x: int) -> None:
        """Do nothing, in the thread pool."""


def worker_api() -> tuple[FastAPI, celery_gcp.Celery, celery_gcp.Celery]:
    """One FastAPI app with celery_gcp's task endpoints (caller verification off, and on
    under ``/_verified``) and the plain ones."""
    app = celery_gcp.Celery("bench", broker_url="memory://", task_auth="none")
    verified = celery_gcp.Celery(
        "bench", broker_url="memory://", task_auth="oidc", task_base_url="http://bench",
        task_endpoint_prefix="/_verified", gcp_service_account=SERVICE_ACCOUNT)
    noop_tasks(app)
    noop_tasks(verified)

    api = FastAPI()
    api.include_router(app.router)
    api.include_router(verified.router)

    @api.post("/plain", response_model=None)  # no response validation: the fast path
    async def plain(args: Annotated[NoopArgs, Body()]) -> dict[str, Any]:
        return {"id": "plain", "task": "bench.noop", "state": "SUCCESS", "result": None}

    @api.post("/plain_sync", response_model=None)
    def plain_sync(args: Annotated[NoopArgs, Body()]) -> dict[str, Any]:
        return {"id": "plain", "task": "bench.noop_sync", "state": "SUCCESS", "result": None}

    return api, app, verified


def distinct_tokens(issuer: Any, audience: str, count: int) -> list[str]:
    """``count`` different valid tokens of ``issuer`` for ``audience`` (each ``iat`` a second
    earlier), minted before timing."""
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(issuer.private_key_pem(), None)  # loading it is the slow part
    now = int(time.time())
    return [jwt.encode({"iss": "https://accounts.google.com", "aud": audience,
                        "email": SERVICE_ACCOUNT, "email_verified": True, "sub": "1",
                        "iat": now - i, "exp": now + 3600},
                       key, algorithm="RS256", headers={"kid": issuer.kid})
            for i in range(count)]


def bench_worker(mode: Mode) -> list[Result]:
    """Requests/s through a no-op task endpoint vs a plain FastAPI endpoint, in-process; and
    the same task with caller verification on (keys cached) vs off."""
    from celery_gcp.testing import auth_headers, trusted_issuer

    api, app, verified = worker_api()
    transport = app.transport
    assert isinstance(transport, MemoryTransport)
    prefix = app.conf.task_endpoint_prefix.rstrip("/")
    results = []
    with asyncio.Runner() as runner:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                   base_url="http://bench")

        def side(path: str, body: bytes, headers: dict[str, str]) -> Callable[[], float]:
            return lambda: runner.run(post_many(client, path, body, headers, mode.requests))

        for suffix, name in (("", "2a. worker, async task"), ("_sync", "2b. worker, sync task")):
            app.tasks[f"bench.noop{suffix}"].delay(1)
            [message] = transport.pop()  # the body and X-Celery-* headers a worker receives
            path = f"{prefix}/{message.task}"
            reply = runner.run(client.post(path, content=message.body,
                                           headers=message.http_headers()))
            if reply.json().get("state") != "SUCCESS":
                raise RuntimeError(f"{path} answered {reply.status_code} {reply.text}")
            sides = [side(path, message.body, message.http_headers()),
                     side(f"/plain{suffix}", message.body, {"Content-Type": "application/json"})]
            for warm_up in sides:
                warm_up()
            ours, plain = interleave(sides, mode.rounds)
            results.append(compare(name, "req/s", ours, plain, "FastAPI",
                                   target=0.85, lower_is_better=False))
        # 2c/2d. The same async task with each request's OIDC token checked (allowed email,
        # audience, expiry; keys already cached, as after the first request) vs unchecked. 2c
        # sends one token, as a caller reusing its token until it expires does (its signature
        # is checked once); 2d a new token per request (an RSA check every time).
        issuer = trusted_issuer(verified)
        verified.tasks["bench.noop"].delay(1)
        [message] = verified.transport.pop()  # type: ignore[attr-defined]
        secure = f"/_verified/{message.task}"
        signed = {**message.http_headers(), **auth_headers(verified, issuer, secure)}
        plain_path = f"{prefix}/{message.task}"

        async def fresh_tokens() -> float:
            tokens = distinct_tokens(issuer, f"http://bench{secure}", mode.requests)
            start = time.perf_counter()
            for token in tokens:
                response = await client.post(secure, content=message.body, headers={
                    **message.http_headers(), "Authorization": f"Bearer {token}"})
                if response.status_code != 200:
                    raise RuntimeError(f"POST {secure}: {response.status_code} {response.text}")
            return mode.requests / (time.perf_counter() - start)

        unchecked = side(plain_path, message.body, message.http_headers())
        sides = [side(secure, message.body, signed), lambda: runner.run(fresh_tokens()),
                 unchecked]
        for warm_up in sides:
            warm_up()
        reused, fresh, off = interleave(sides, mode.rounds)
        results.append(compare("2c. token checked, reused", "req/s", reused, off, "unchecked",
                               target=1 / 1.15, lower_is_better=False))
        results.append(compare("2d. token checked, new each", "req/s", fresh, off, "unchecked",
                               target=1 / 1.15, lower_is_better=False))
        runner.run(client.aclose())
    return results


# -- 3. Import time ---------------------------------------------------------------------------


def run_python(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Run ``python -c code`` in a fresh interpreter: (wall-clock seconds, the number it prints)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return time.perf_counter() - start, float(out)


def instruction_ratio(env: dict[str, str]) -> float | None:
    """Instructions of ``from celery_gcp import Celery`` / ``import fastapi``, start-up
    subtracted.

    Counted by valgrind's callgrind, which does not depend on the machine's load: a
    repeatable cross-check of the wall-clock import figures. ``None`` without valgrind.
    """
    if shutil.which("valgrind") is None:
        return None

    def count(statement: str) -> int:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             "-c", statement], cwd=ROOT, env=env, check=True, capture_output=True,
            text=True).stderr
        return int(out.rsplit("Collected :", 1)[1].split()[0])

    start, ours, theirs = (count(statement) for statement in STATEMENTS)
    return (ours - start) / (theirs - start)


def bench_import(mode: Mode) -> tuple[Result, list[str]]:
    """Import time of celery_gcp vs fastapi (minus interpreter start-up), and forbidden modules.

    Both sides import from bytecode caches, as an installed package does: the caches go to a
    temporary ``PYTHONPYCACHEPREFIX``, so ``PYTHONDONTWRITEBYTECODE`` cannot leave the project's
    own modules recompiled on every run while site-packages have ``.pyc`` files.
    """
    with tempfile.TemporaryDirectory(prefix="celery-gcp-bench-") as cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        sides = [partial(run_python, IMPORT.format(statement), env)
                 for statement in STATEMENTS]
        for side in sides:  # warm up: fill the bytecode cache and the page cache
            side()
        empty, ours, theirs = interleave(sides, mode.import_runs)
        probe = subprocess.run(
            [sys.executable, "-c", "import sys\nfrom celery_gcp import Celery\n"
             f"print(*sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))"],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )
        counted = instruction_ratio(env) if mode is FULL else None
    base = statistics.median(wall for wall, _ in empty)
    inside = [statistics.median(t * 1e3 for _, t in side) for side in (ours, theirs)]
    note = (f"timed inside the interpreter: celery_gcp {fmt(inside[0])}, fastapi "
            f"{fmt(inside[1])} ms, ratio {inside[0] / inside[1]:.3f}")
    if counted is not None:
        note += f"\n  {'':<22} instructions (callgrind, noise-free): ratio {counted:.3f}"
    result = compare("3. import time", "ms", [(wall - base) * 1e3 for wall, _ in ours],
                     [(wall - base) * 1e3 for wall, _ in theirs], "fastapi",
                     target=1.1, lower_is_better=True)
    return replace(result, note=note), probe.stdout.split()


# -- report -----------------------------------------------------------------------------------


def report(results: Sequence[Result], forbidden: list[str]) -> bool:
    """Print the results table; returns whether every target was met."""
    print(f"{'benchmark':<24} {'celery_gcp':>18} {'baseline':>28} {'ratio':>7} "
          f"{'target':>8}  met")
    for r in results:
        op = "<=" if r.lower_is_better else ">="
        theirs = f"{r.baseline_name} {fmt(r.baseline)} {r.unit}"
        print(f"{r.name:<24} {fmt(r.ours) + ' ' + r.unit:>18} {theirs:>28} {r.ratio:>7.3f} "
              f"{op + ' ' + format(r.target, '.2f'):>8}  {'yes' if r.met else 'NO'}")
    clean = not forbidden
    print(f"{'3. google/grpc imports':<24} {', '.join(forbidden) or 'none':>18} "
          f"{'(must be none)':>28} {'':>7} {'none':>8}  {'yes' if clean else 'NO'}")
    print("\nspread (min..max of the rounds):")
    for r in results:
        (a, b), (c, d) = r.spread
        print(f"  {r.name:<22} celery_gcp {fmt(a)}..{fmt(b)}, "
              f"{r.baseline_name} {fmt(c)}..{fmt(d)} {r.unit}")
        if r.note:
            print(f"  {'':<22} {r.note}")
    return clean and all(r.met for r in results)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print the report."""
    parser = argparse.ArgumentParser(description="celery_gcp benchmarks")
    parser.add_argument("--quick", action="store_true", help="a fast run (a few seconds)")
    parser.add_argument("--smoke", action="store_true",
                        help="the smallest sizes: the script works, the figures mean nothing")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    mode = {"smoke": SMOKE, "quick": QUICK, "full": FULL}[name]
    print(f"celery_gcp benchmarks ({name}: {mode.rounds} "
          f"alternating rounds per side, {mode.import_runs} import runs; medians) | Python "
          f"{sys.version.split()[0]}, celery {celery.__version__}, fastapi {fastapi.__version__}, "
          f"httpx {httpx.__version__}\n")
    results = [bench_delay(mode), bench_trace_lookup(mode), *bench_worker(mode)]
    imported, forbidden = bench_import(mode)
    ok = report([*results, imported], forbidden)
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
