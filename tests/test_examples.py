"""The examples run end to end, as README's Quickstart runs them: through `celery-gcp dev`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_demo(example: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``celery-gcp -A examples.<example>.tasks dev --run ...:demo --exit-when-idle``, keeping
    results in ``data_dir``."""
    module = f"examples.{example}.tasks"
    env = {k: v for k, v in os.environ.items() if k != "CELERY_GCP_TASK_AUTH"}  # the default
    out = subprocess.run(
        [sys.executable, "-m", "celery_gcp.cli", "-A", module, "dev", "--port", "0",
         "--run", f"{module}:demo", "--exit-when-idle", "--data-dir", str(data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=90, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_quickstart_runs_under_dev_and_exits_0(tmp_path: Path) -> None:
    out = run_demo("quickstart", tmp_path)
    lines = out.stdout.splitlines()
    # Results out of the box: dev's SQLite store, in its data directory.
    assert f"dev: results in db+sqlite:///{tmp_path.resolve() / 'results.sqlite'}" in lines
    assert "add(2, 3) = 5" in lines
    assert (tmp_path / "results.sqlite").is_file()
    assert sum(" finished " in line for line in lines) == 3
    assert sum(" retried " in line for line in lines) == 2
    assert sum(" sent " in line for line in lines) == 5  # 3 tasks + 2 retries
    assert "fetched https://example.com/feed after 2 retries" in out.stdout
    assert lines[-1] == "dev: every task finished"


def test_periodic_example_syncs_its_schedule_and_runs_each_entry(tmp_path: Path) -> None:
    out = run_demo("periodic", tmp_path)
    lines = out.stdout.splitlines()
    assert ("dev: beat 'morning-report': examples.periodic.tasks.report at '0 7 * * 1-5' "
            "(Europe/Paris)") in lines
    assert any(line.startswith("dev: beat 'cleanup': examples.periodic.tasks.cleanup")
               for line in lines)  # added by an on_after_configure handler, as in Celery
    assert "-> 'daily report sent'" in out.stdout
    assert any("finished  examples.periodic.tasks.cleanup[periodic-cleanup-" in line
               for line in lines)
    assert lines[-1] == "dev: every task finished"


def test_routes_example_runs_both_kinds_of_route_tasks(tmp_path: Path) -> None:
    with socket.socket() as probe:  # dev serves on this port; the builder calls back to it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    module = "examples.routes.tasks"
    env = {k: v for k, v in os.environ.items() if k != "CELERY_GCP_TASK_AUTH"}
    env["EXAMPLE_BASE_URL"] = f"http://127.0.0.1:{port}"
    out = subprocess.run(
        [sys.executable, "-m", "celery_gcp.cli", "-A", module, "dev", "--port", str(port),
         "--asgi", f"{module}:api", "--run", f"{module}:demo", "--exit-when-idle",
         "--data-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=90, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert sum(" retried " in line for line in lines) == 1
    assert any("finished  examples.routes.tasks.charge[" in line and
               "'shop': 'acme', 'charged': '1250 EUR'" in line for line in lines), out.stdout
    assert "notify user 7 by email, sms: your order is paid" in lines
    assert lines[-1] == "dev: every task finished"
