"""celery-gcp dev in-process: queues configured as declared, tasks run, environment restored."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from celery_gcp import Celery
from celery_gcp.dev import DevStack, TaskLog


def test_dev_stack_runs_tasks_with_a_log_and_restores_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("CLOUD_SCHEDULER_EMULATOR_HOST", raising=False)
    app = Celery("devtest", gcp_queues={"emails": {"rate_limit": "5/s", "max_attempts": 3}})

    @app.task(name="devtest.send", queue="emails")
    def send(to: str) -> str:
        return f"sent to {to}"

    @app.task(name="devtest.boom")
    def boom() -> None:
        raise ValueError("boom")

    lines: list[str] = []
    log = TaskLog(echo=lines.append)
    log.connect()
    try:
        with DevStack(app, port=0) as stack:
            assert stack.queue_names() == ["celery", "emails"]
            queue = stack.emulator.tasks_client().get_queue(
                name="projects/local/locations/us-central1/queues/emails")
            assert queue.rate_limits.max_dispatches_per_second == 5
            assert queue.retry_config.max_attempts == 3
            send.delay("ada@example.com")
            boom.delay()
            assert stack.wait_until_done(timeout=30)
    finally:
        log.disconnect()
    assert "CLOUD_TASKS_EMULATOR_HOST" not in os.environ
    assert logging.getLogger("httpx").filters == []  # dev's log filter leaves with it
    # Its channel is closed before the emulator stops (else gRPC may log the GOAWAY).
    assert stack.transport._client is None
    assert any(" finished  devtest.send" in line and "'sent to ada@example.com'" in line
               for line in lines)
    assert any(" failed    devtest.boom" in line for line in lines)
    assert log.failures == 1


def test_waiting_for_tasks_needs_the_embedded_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery_gcp.emulator import Emulator

    with Emulator() as external:
        monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", external.address)
        app = Celery("devtest2")
        with DevStack(app, port=0) as stack:
            assert stack.emulator is None
            with pytest.raises(RuntimeError, match="unset CLOUD_TASKS_EMULATOR_HOST"):
                stack.wait_until_done(timeout=1)
        assert os.environ["CLOUD_TASKS_EMULATOR_HOST"] == external.address


def test_a_failed_start_leaves_nothing_running(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from celery_gcp.exceptions import ImproperlyConfigured

    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    app = Celery("devtest3", gcp_queues={"emails": {"rate_limt": "5/s"}})  # typo on purpose
    # Another test's shared emulator may be serving in this process: only this stack's count.
    before = set(threading.enumerate())
    stack = DevStack(app, port=0)
    with pytest.raises(ImproperlyConfigured, match="unknown setting 'rate_limt'"):
        stack.__enter__()
    assert "CLOUD_TASKS_EMULATOR_HOST" not in os.environ
    assert stack.emulator is not None
    assert stack.emulator._proc is None  # the emulator process was stopped
    assert not [t for t in threading.enumerate()
                if t.name.startswith("celery-gcp") and t not in before]


def test_a_schedule_that_cannot_sync_stops_dev_with_its_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from celery_gcp.exceptions import ScheduleError

    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("CLOUD_SCHEDULER_EMULATOR_HOST", raising=False)
    app = Celery("devtest", beat_schedule={"every-90.5s": {"task": "devtest.t",
                                                            "schedule": 90.5}})

    @app.task(name="devtest.t")
    def t() -> None: ...

    stack = DevStack(app, port=0)
    with pytest.raises(ScheduleError, match=r"beat_schedule\['every-90.5s'\].*whole number"):
        stack.__enter__()
    assert "CLOUD_TASKS_EMULATOR_HOST" not in os.environ
    assert "CLOUD_SCHEDULER_EMULATOR_HOST" not in os.environ


def test_dev_verifies_callers_with_the_emulators_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    monkeypatch.delenv("CELERY_GCP_TASK_AUTH")  # the default: verification on
    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("CLOUD_SCHEDULER_EMULATOR_HOST", raising=False)
    app = Celery("devtest")

    @app.task(name="devtest.echo")
    def echo(text: str) -> str:
        return text

    with DevStack(app, port=0) as stack:
        assert app.verifier.enabled
        result = echo.delay("signed by the emulator")  # runs: the token checks out
        assert stack.wait_until_done(timeout=30)
        forged = httpx.post(f"{stack.url}/_tasks/devtest.echo", json={"text": "x"},
                            headers={"X-Celery-Task-Id": "forged"})
        assert forged.status_code == 401
        assert result.id
    assert "CELERY_GCP_OIDC_CERTS_URL" not in os.environ


def test_a_fired_schedule_is_pending_until_its_task_has_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from celery_gcp import beat, signals
    from celery_gcp.schedules import crontab

    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("CLOUD_SCHEDULER_EMULATOR_HOST", raising=False)
    app = Celery("devidle", beat_schedule={
        "nightly": {"task": "devidle.report", "schedule": crontab(minute=0, hour=3)}})
    ran: list[str] = []

    @app.task(name="devidle.report")
    def report() -> None:
        ran.append("report")

    sending, send = threading.Event(), threading.Event()

    def hold(sender: str, **_: object) -> None:
        # The beat endpoint is about to create the task: Cloud Scheduler's call is unanswered.
        if sender == "devidle.report":
            sending.set()
            send.wait(30)

    signals.before_task_publish.connect(hold)
    try:
        with DevStack(app, port=0) as stack:
            assert stack.pending() == 0
            beat.run(app, "nightly")  # RunJob, as dev --run demos do
            assert sending.wait(30)
            assert stack.pending() == 1  # no task exists yet, but the fired job is in flight
            send.set()
            assert stack.wait_until_done(timeout=30)
            assert ran == ["report"]  # idle came only after the task the job sent had run
            assert stack.pending() == 0
    finally:
        send.set()
        signals.before_task_publish.disconnect(hold)


# A project that logs at INFO, with a layer (added before dev's task log, as any layer of the
# project's is) that holds each send until the task has run: the worker starts the task
# before the transport's send returns, every time.
SLOW_ACK_PROJECT = '''
import logging
import threading

from celery_gcp import Celery
from celery_gcp.layers import Layer

logging.basicConfig(level=logging.INFO)
log = logging.getLogger("slowack")
app = Celery("slowack")
ran = threading.Event()


class AckAfterRun(Layer):
    def after_send(self, message, receipt):
        log.info("send returned after the run: %s", ran.wait(30))

    def after_run(self, run, result):
        ran.set()


app.layers.add(AckAfterRun())


@app.task(name="slowack.add")
def add(x: int, y: int) -> int:
    log.info("adding %s and %s", x, y)
    return x + y


def demo() -> None:
    import httpx

    add.delay(2, 3)
    httpx.get(f"{app.conf.task_base_url}/docs")  # the project's own request: still logged
'''


def test_dev_prints_sent_before_started_and_keeps_its_own_calls_out_of_an_info_log(
        tmp_path: Path) -> None:
    (tmp_path / "slowack.py").write_text(SLOW_ACK_PROJECT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CELERY_GCP_TASK_AUTH", "CLOUD_TASKS_EMULATOR_HOST",
                        "CLOUD_SCHEDULER_EMULATOR_HOST")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-m", "celery_gcp.cli", "-A", "slowack", "dev", "--port", "0",
         "--run", "slowack:demo", "--exit-when-idle", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=90, env=env)
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stdout
    assert "INFO:slowack:send returned after the run: True" in lines  # the case happened
    assert "INFO:slowack:adding 2 and 3" in lines  # the project's own log is kept
    [sent] = [i for i, line in enumerate(lines) if " sent      slowack.add[" in line]
    [started] = [i for i, line in enumerate(lines) if " started   slowack.add[" in line]
    assert lines[sent].split("add[")[1][:8] == lines[started].split("add[")[1][:8]
    assert sent < started, out.stdout
    # dev's polling of the emulator and its token keys: no httpx lines but the project's own.
    [request] = [line for line in lines if "HTTP Request" in line]
    assert "/docs " in request, out.stdout
    assert lines[-1] == "dev: every task finished"


def test_a_task_a_schedule_fired_stores_its_result_under_its_id(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A beat fire is not a run (Celery's beat stores nothing either): the task it sends is,
    # and its outcome is stored under the id the fire gave it, for AsyncResult(id).
    from celery_gcp import beat
    from celery_gcp.schedules import crontab

    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("CLOUD_SCHEDULER_EMULATOR_HOST", raising=False)
    app = Celery("devbeat", result_extended=True, beat_schedule={
        "nightly": {"task": "devbeat.report", "schedule": crontab(minute=0, hour=3),
                    "args": (2,)}})
    ids: list[str] = []

    @app.task(name="devbeat.report", bind=True)
    def report(self: object, n: int) -> int:
        ids.append(self.request.id)  # type: ignore[attr-defined]
        return n * 21

    with DevStack(app, port=0, data_dir=tmp_path) as stack:
        beat.run(app, "nightly")
        assert stack.wait_until_done(timeout=30)
        (task_id,) = ids
        result = app.AsyncResult(task_id)
        assert result.get(timeout=10) == 42
        assert (result.name, result.args) == ("devbeat.report", [2])


def test_dev_serves_the_dashboard_over_its_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("CLOUD_SCHEDULER_EMULATOR_HOST", raising=False)
    app = Celery("devdash", task_routes={"devdash.mail": "emails"})

    @app.task(name="devdash.mail")
    def mail(to: str) -> None: ...

    with DevStack(app, port=0) as stack:
        mail.apply_async(("a@example.com",), countdown=600)
        page = httpx.get(stack.dashboard_url + "/", timeout=30)
    assert page.status_code == 200
    assert "<code>emails</code>" in page.text
    assert "devdash.mail" in page.text
    assert "a@example.com" in page.text


def test_dev_stopped_by_sigterm_stops_its_emulator_too(tmp_path: Path) -> None:
    import signal
    import socket
    import time

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ("CLOUD_TASKS_EMULATOR_HOST", "CLOUD_SCHEDULER_EMULATOR_HOST")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery_gcp.cli", "-A", "examples.quickstart.tasks", "dev",
         "--port", "0", "--data-dir", str(tmp_path)],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # ends when dev exits, so a failed start fails here
            lines.append(line)
            if line.startswith("dev: running"):
                break
        address = next((x.split(" emulator at ", 1)[1].split(";", 1)[0] for x in lines
                        if " emulator at " in x), None)
        assert address is not None, "".join(lines)
        host, port = address.rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=5).close()  # the emulator is up
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 15
        while True:  # the emulator was a process of dev's own: it is gone with dev
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
            except OSError:
                break
            assert time.monotonic() < deadline, f"the emulator at {address} outlived dev"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
