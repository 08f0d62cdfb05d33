"""The celery-gcp command: -A discovery, inspect, and worker serving over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from celery_gcp.cli import main

from .serving import wait_for_port

ROOT = Path(__file__).resolve().parents[1]
APP = "examples.quickstart.tasks"


def test_inspect_registered_and_routes() -> None:
    runner = CliRunner()
    registered = runner.invoke(main, ["-A", APP, "inspect", "registered"])
    assert registered.exit_code == 0, registered.output
    assert f"{APP}.add\tPOST /_tasks/{APP}.add" in registered.output
    routes = runner.invoke(main, ["-A", f"{APP}:app", "inspect", "routes"])
    assert f"{APP}.add\tdefault\tdefault" in routes.output


def test_app_not_found_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["-A", "celery_gcp.queue_routing", "inspect", "registered"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: module 'celery_gcp.queue_routing' has no Celery app")
    assert result.output.count("\n") == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_worker_serves_the_task_endpoints_on_port() -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery_gcp.cli", "-A", APP, "worker", "--host", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(proc, port, "celery-gcp worker")
        response = httpx.post(f"http://127.0.0.1:{port}/_tasks/{APP}.add",
                              json={"x": 2, "y": 40}, headers={"X-Celery-Task-Id": "cli-1"})
        assert response.status_code == 200
        assert json.loads(response.content)["result"] == 42
        for path in ("/openapi.json", "/docs", "/redoc"):  # no task list (worker_docs)
            assert httpx.get(f"http://127.0.0.1:{port}{path}").status_code == 404, path
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_the_worker_serves_on_uvloop(tmp_path: Path) -> None:
    # uvicorn's fast loop (and parser) are dependencies: a deployed worker runs on them.
    (tmp_path / "loop_proj.py").write_text(
        "import asyncio\nimport celery_gcp\n"
        "app = celery_gcp.Celery('loop_proj', task_auth='none')\n"
        "@app.task(name='loop_proj.loop')\n"
        "async def loop() -> str:\n"
        "    return type(asyncio.get_running_loop()).__module__\n")
    port = free_port()
    env = {**os.environ, "PORT": str(port),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery_gcp.cli", "-A", "loop_proj", "worker", "--host",
         "127.0.0.1"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(proc, port, "celery-gcp worker")
        response = httpx.post(f"http://127.0.0.1:{port}/_tasks/loop_proj.loop", json={},
                              headers={"X-Celery-Task-Id": "loop-1"})
        assert response.status_code == 200, response.text
        assert json.loads(response.content)["result"].startswith("uvloop")
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_a_worker_on_cloud_run_logs_json_lines_for_cloud_logging() -> None:
    port = free_port()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    env = {**os.environ, "PORT": str(port), "K_SERVICE": "worker", "GOOGLE_CLOUD_PROJECT": "p"}
    env.pop("CELERY_GCP_WORKER_LOG_JSON", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery_gcp.cli", "-A", APP, "worker", "--host", "127.0.0.1",
         "-l", "INFO"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(proc, port, "celery-gcp worker")
        response = httpx.post(
            f"http://127.0.0.1:{port}/_tasks/{APP}.add", json={"x": 2, "y": 40},
            headers={"X-Celery-Task-Id": "cli-2",
                     "traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
        assert response.status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    entries = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    (done,) = [e for e in entries if "succeeded" in e["message"]]
    assert done["message"].startswith(f"task {APP}.add[cli-2] succeeded in ")
    assert done["message"].endswith(": 42")
    assert done["severity"] == "INFO"
    assert done["logging.googleapis.com/trace"] == f"projects/p/traces/{trace}"
    assert done["logging.googleapis.com/labels"] == {
        "task_id": "cli-2", "task_name": f"{APP}.add", "task_retries": "0"}


def test_an_app_served_by_its_own_uvicorn_on_cloud_run_logs_json_from_the_start() -> None:
    # No celery-gcp worker: the router, built as the user's FastAPI app includes it, sets up
    # Cloud Logging's format first, so even the warnings of building it are JSON lines.
    env = {**os.environ, "K_SERVICE": "worker"}
    env.pop("CELERY_GCP_WORKER_LOG_JSON", None)
    done = subprocess.run(
        [sys.executable, "-c", "from celery_gcp import Celery; Celery('x').router"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    entries = [json.loads(line) for line in done.stdout.splitlines()]
    assert entries
    assert all(e["severity"] in ("WARNING", "ERROR") for e in entries)
    assert any("task_auth=" in e["message"] for e in entries)
    assert done.stderr == ""
