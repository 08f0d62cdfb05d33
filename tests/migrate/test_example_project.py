"""examples/celery_project, a Celery project written with Celery's imports, migrated by
``celery-gcp migrate --write`` and then run under ``celery-gcp dev``: its FastAPI front starts
a task over real HTTP and reads the task's result back through ``AsyncResult``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "celery_project"

#: Run by `dev --run` once the emulator and the worker are up: the front, served by uvicorn,
#: is called over HTTP; it sends the task through the emulator to dev's worker.
FRONT_CHECK = '''
import time

import httpx

from celery_gcp.testing import serve
from examples.celery_project.api import api


def check() -> None:
    with serve(api) as url:
        task_id = httpx.post(f"{url}/reports/daily").json()["task_id"]
        deadline = time.monotonic() + 30
        body = httpx.get(f"{url}/reports/status/{task_id}").json()
        while body["state"] != "SUCCESS":  # polled until the worker has run it (a retry first)
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
            body = httpx.get(f"{url}/reports/status/{task_id}").json()
    print("front:", body["state"], body["result"])
'''


def celery_gcp(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``celery-gcp ARGS`` in a fresh interpreter, in ``cwd``."""
    environ = {k: v for k, v in os.environ.items() if k != "CELERY_GCP_TASK_AUTH"}
    return subprocess.run([sys.executable, "-m", "celery_gcp.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env={**environ, **env})


def copy_example(tmp_path: Path) -> Path:
    """The example, as the package ``examples.celery_project`` under ``tmp_path``."""
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "__init__.py").write_text("")
    shutil.copytree(EXAMPLE, tmp_path / "examples" / "celery_project",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "examples" / "celery_project"


def test_the_example_is_written_with_celerys_imports() -> None:
    sources = "".join(p.read_text() for p in EXAMPLE.glob("*.py"))
    assert "from celery import Celery" in sources
    assert "from celery.result import AsyncResult" in sources
    assert "celery_gcp" not in sources.replace("celery-gcp", "")


def test_the_example_runs_under_real_celery_in_eager_mode() -> None:
    # Celery comes with the test extra; the example is imported only in this subprocess.
    code = ("from examples.celery_project.celery_app import app\n"
            "app.conf.task_always_eager = True\n"
            "from examples.celery_project.tasks import build_report\n"
            "print(type(app).__module__, build_report.delay('daily').get())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout == "celery.app.base daily report built after 1 retry\n", out.stderr


def test_migrated_example_runs_under_dev_through_its_fastapi_front(tmp_path: Path) -> None:
    project = copy_example(tmp_path)
    out = celery_gcp("migrate", "--write", str(project), cwd=tmp_path)
    # Written, with what differs listed: the broker URL, the result store, the schedule.
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == ("migrate: 5 file(s) scanned, 4 rewritten, "
                                           "3 finding(s) need attention, 0 for information")
    assert "celeryconfig.py:7: differs: broker_url: " in out.stdout
    assert "from celery_gcp import Celery\n" in (project / "celery_app.py").read_text()

    (tmp_path / "front_check.py").write_text(FRONT_CHECK)
    results = tmp_path / "results.sqlite"
    out = celery_gcp("-A", "examples.celery_project.celery_app", "dev", "--port", "0",
                     "--run", "front_check:check", "--exit-when-idle",
                     "--data-dir", str(tmp_path / "dev"), cwd=tmp_path,
                     CELERY_RESULT_BACKEND=f"db+sqlite:///{results}")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert "front: SUCCESS daily report built after 1 retry" in lines
    assert any(line.startswith("dev: beat 'morning-report': "
                               "examples.celery_project.tasks.build_report at '0 7 * * 1-5'")
               for line in lines), out.stdout
    assert sum(" retried " in line for line in lines) == 1
    assert lines[-1] == "dev: every task finished"
