"""The benchmark script keeps running (figures are read by people, not asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_smoke_run_prints_every_ratio() -> None:
    out = subprocess.run([sys.executable, "benchmarks/run.py", "--smoke"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for row in ("1. CPU per .delay()", "2a. worker, async task", "2b. worker, sync task",
                "3. import time", "3. google/grpc imports"):
        assert row in out.stdout


def test_result_store_benchmarks_smoke_run_prints_every_ratio() -> None:
    out = subprocess.run([sys.executable, "benchmarks/results.py", "--smoke"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for row in ("1a. worker, redis store", "1b. worker, sqlite store",
                "1d. served worker, redis store", "2. AsyncResult.get(), done"):
        assert row in out.stdout


def test_observability_benchmarks_smoke_run_prints_every_ratio() -> None:
    out = subprocess.run([sys.executable, "benchmarks/observability.py", "--smoke"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for row in ("1a. .delay(), traced request", "1b. .delay(), OpenTelemetry",
                "2a. worker, trace continued", "2b. worker, OpenTelemetry", "3. dashboard"):
        assert row in out.stdout
