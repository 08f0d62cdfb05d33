"""The examples run end to end, as README's Quickstart runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_every_task_and_exits_0() -> None:
    out = subprocess.run([sys.executable, "examples/quickstart/main.py"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert sum(" finished " in line for line in lines) == 3
    assert sum(" retried " in line for line in lines) == 2
    assert "5 deliveries" in lines[-1]
    assert "fetched https://example.com/feed after 2 retries" in out.stdout
