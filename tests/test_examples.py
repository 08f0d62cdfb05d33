"""The examples run end to end, as README's Quickstart runs them: through `celery-gcp dev`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_under_dev_and_exits_0() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "celery_gcp.cli", "-A", "examples.quickstart.tasks", "dev",
         "--port", "0", "--run", "examples.quickstart.tasks:demo", "--exit-when-idle"],
        cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert sum(" finished " in line for line in lines) == 3
    assert sum(" retried " in line for line in lines) == 2
    assert sum(" sent " in line for line in lines) == 5  # 3 tasks + 2 retries
    assert "fetched https://example.com/feed after 2 retries" in out.stdout
    assert lines[-1] == "dev: every task finished"
