"""`celery-gcp deploy plan` and the "Going to Google Cloud" example (examples/deploy).

The plan is compared with the example's checked-in output (examples/deploy/deploy-plan.sh),
run as a shell script against a stand-in `gcloud` that records its arguments, and its queue
and job values are checked against what `queues sync` / `beat sync` make in the emulator.
The Dockerfile's CMD runs as a process (no Docker here) and answers a task the emulator
delivers with its own OIDC token.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from celery_gcp import Celery, beat, deploy, gcp, queues
from celery_gcp.emulator import Emulator
from celery_gcp.transport.cloudtasks import CloudTasksTransport
from celery_gcp.transport.memory import MemoryTransport

from .serving import wait_for_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "deploy"
PLAN = ["-A", "shop", "deploy", "plan", "--service", "shop-worker"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without Google Cloud settings or emulators: the app's code decides."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CELERY_GCP_", "GOOGLE_CLOUD", "GCLOUD_", "CLOUD_TASKS_",
                                "CLOUD_SCHEDULER_"))}
    return {**env, **extra}


def celery_gcp(*args: str, cwd: Path = EXAMPLE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "celery_gcp.cli", *args], cwd=cwd,
                          env=clean_env(), capture_output=True, text=True, timeout=60)


def test_the_plan_of_the_example_is_the_checked_in_script() -> None:
    out = celery_gcp(*PLAN)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (EXAMPLE / "deploy-plan.sh").read_text()


def test_the_plan_runs_as_a_shell_script_with_the_exact_arguments(tmp_path: Path) -> None:
    """Each command, pasted into a shell, reaches gcloud with the argv of --format=json."""
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "bin" / "gcloud"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    fake.chmod(0o755)
    env = clean_env(PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    ran = subprocess.run(["bash", "-e", str(EXAMPLE / "deploy-plan.sh")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    called = [json.loads(line) for line in log.read_text().splitlines()]
    planned = json.loads(celery_gcp(*PLAN, "--format=json").stdout)
    assert called == [step["argv"][1:] for step in planned if step["argv"]]
    roles = {arg for argv in called for arg in argv if arg.startswith("--role=")}
    assert roles == {"--role=roles/cloudtasks.enqueuer", "--role=roles/iam.serviceAccountUser",
                     "--role=roles/run.invoker"}


def flags(argv: list[str]) -> dict[str, str]:
    return dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)


def seconds(value: str) -> float:
    return float(value.removesuffix("s"))


def test_queues_and_jobs_have_the_values_sync_gives_them() -> None:
    from examples.deploy import shop

    planned = [shlex.split(step.command()) for step in _plan(shop.app)]
    with Emulator() as emulator:
        tasks, scheduler = emulator.tasks_client(), emulator.scheduler_client()
        specs = queues.desired(shop.app, lambda name: gcp.queue_path(shop.app, name))
        queues.apply(queues.plan(specs, CloudTasksTransport(client=tasks).get_queue), tasks)
        beat.sync(shop.app, scheduler)
        made = [argv for argv in planned if argv[1:4] == ["tasks", "queues", "create"]]
        assert [argv[4] for argv in made] == ["default", "emails"]
        for argv in made:
            given = flags(argv)
            queue = tasks.get_queue(
                name=f"projects/my-shop-prod/locations/{given['location']}/queues/{argv[4]}")
            rate, retry = queue.rate_limits, queue.retry_config
            assert float(given.get("max-dispatches-per-second", rate.max_dispatches_per_second)) \
                == rate.max_dispatches_per_second
            assert int(given.get("max-attempts", retry.max_attempts)) == retry.max_attempts
            for name, value in (("min-backoff", retry.min_backoff),
                                ("max-backoff", retry.max_backoff)):
                assert seconds(given.get(name, f"{value.total_seconds()}s")) \
                    == value.total_seconds()
        jobs = [argv for argv in planned if argv[1:5] == ["scheduler", "jobs", "create", "http"]]
        assert len(jobs) == 2
        for argv in jobs:
            given = flags(argv)
            job = scheduler.get_job(
                name=f"projects/my-shop-prod/locations/{given['location']}/jobs/{argv[5]}")
            target, retry = job.http_target, job.retry_config
            assert (given["schedule"], given["time-zone"], given["uri"], given["description"]) \
                == (job.schedule, job.time_zone, target.uri, job.description)
            assert (given["oidc-service-account-email"], given["oidc-token-audience"]) == (
                target.oidc_token.service_account_email, target.oidc_token.audience)
            assert int(given["max-retry-attempts"]) == retry.retry_count
            assert int(given["max-doublings"]) == retry.max_doublings
            assert seconds(given["min-backoff"]) == retry.min_backoff_duration.total_seconds()
            assert seconds(given["max-backoff"]) == retry.max_backoff_duration.total_seconds()
            assert seconds(given["attempt-deadline"]) == job.attempt_deadline.total_seconds()
            paused = ["gcloud", "scheduler", "jobs", "pause", argv[5]]
            assert any(p[:5] == paused for p in planned) == (job.state.name == "PAUSED")


def _plan(app: Celery) -> list[deploy.Step]:
    return deploy.plan(app, service="shop-worker")


APP_MODULE = """
from celery_gcp import Celery

app = Celery("proj")
app.conf.update({settings})

@app.task(name="proj.add")
def add(x: int, y: int) -> int:
    return x + y
"""
FULL = ('gcp_project="p1", task_base_url="https://w.example", '
        'gcp_service_account="tasks@p1.iam.gserviceaccount.com"')


@pytest.mark.parametrize(("settings", "args", "expected"), [
    ('task_base_url="https://w.example", gcp_service_account="t@p1.iam.gserviceaccount.com"',
     (), "Error: gcp_project is not set: set it (or GOOGLE_CLOUD_PROJECT)"),
    ('gcp_project="p1", task_base_url="https://w.example"',
     (), "Error: gcp_service_account is not set: set it (or CELERY_GCP_SERVICE_ACCOUNT)"),
    ('gcp_project="p1", gcp_service_account="t@p1.iam.gserviceaccount.com"',
     (), "Error: task_base_url is not set"),
    (FULL + ', gcp_queues={"celery": {"speed": 3}}',
     (), "Error: gcp_queues['celery']: unknown setting 'speed'"),
    (FULL + ', beat_schedule={"x": {"task": "proj.nope", "schedule": 60}}',
     (), "Error: beat_schedule['x']: task 'proj.nope' is not registered"),
    (FULL, ("--service", "Bad_Name"), "Error: --service 'Bad_Name' is not a Cloud Run service"),
    (FULL, ("--runtime-account", "nobody"), "Error: --runtime-account 'nobody' is not a "),
])
def test_what_cannot_be_planned_is_one_line_naming_the_setting(
        tmp_path: Path, settings: str, args: tuple[str, ...], expected: str) -> None:
    (tmp_path / "proj.py").write_text(textwrap.dedent(APP_MODULE.format(settings=settings)))
    out = celery_gcp("-A", "proj", "deploy", "plan", *args, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.startswith(expected), out.stderr
    assert out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr


def test_settings_reach_the_worker_and_other_senders_get_their_roles(tmp_path: Path) -> None:
    settings = (FULL + ', task_auth="none", task_endpoint_prefix="/jobs", '
                'task_oidc_audience="https://a.example/x,y"')
    (tmp_path / "proj.py").write_text(textwrap.dedent(APP_MODULE.format(settings=settings)))
    out = celery_gcp("-A", "proj", "deploy", "plan", "--image", "eu.gcr.io/p1/w:1",
                     "--sender", "web@p1.iam.gserviceaccount.com", "--format=json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    argvs = [step["argv"] for step in json.loads(out.stdout) if step["argv"]]
    assert "cloudbuild.googleapis.com" not in argvs[0]  # an image: nothing is built
    deploy = next(argv for argv in argvs if argv[1:3] == ["run", "deploy"])
    assert "--image=eu.gcr.io/p1/w:1" in deploy
    # A value with a comma: gcloud's alternate delimiter, so the list splits where it should.
    env_flag = next(arg for arg in deploy if arg.startswith("--set-env-vars="))
    delim = env_flag.split("^")[1]
    pairs = dict(p.split("=", 1) for p in env_flag.split("^", 2)[2].split(delim))
    assert pairs == {"GOOGLE_CLOUD_PROJECT": "p1", "CELERY_GCP_LOCATION": "us-central1",
                     "CELERY_GCP_TASK_BASE_URL": "https://w.example",
                     "CELERY_GCP_SERVICE_ACCOUNT": "tasks@p1.iam.gserviceaccount.com",
                     "CELERY_GCP_TASK_ENDPOINT_PREFIX": "/jobs", "CELERY_GCP_TASK_AUTH": "none",
                     "CELERY_GCP_TASK_OIDC_AUDIENCE": "https://a.example/x,y"}
    enqueuers = [argv for argv in argvs if "--role=roles/cloudtasks.enqueuer" in argv]
    assert [a[4] for a in enqueuers] == ["--member=serviceAccount:proj-runtime@p1.iam"
                                         ".gserviceaccount.com",
                                         "--member=serviceAccount:web@p1.iam.gserviceaccount.com"]


# -- the container's command ---------------------------------------------------------------


def dockerfile_cmd() -> list[str]:
    """The exec-form CMD of the example's Dockerfile."""
    lines = [line for line in (EXAMPLE / "Dockerfile").read_text().splitlines()
             if line.startswith("CMD ")]
    assert len(lines) == 1
    cmd = json.loads(lines[0].removeprefix("CMD "))
    assert isinstance(cmd, list)
    return [str(word) for word in cmd]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def test_the_containers_command_serves_on_port_and_runs_a_delivered_task(
        emulator: Emulator) -> None:
    from examples.deploy import shop

    port = free_port()
    bin_dir = Path(sys.executable).parent  # where pip put the celery-gcp script
    env = clean_env(PORT=str(port), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                    CELERY_GCP_OIDC_CERTS_URL=emulator.certs_url)  # trust the emulator's tokens
    proc = subprocess.Popen(dockerfile_cmd(), cwd=EXAMPLE, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    recorder, before = MemoryTransport(), shop.app.transport
    shop.app.transport = recorder
    try:
        wait_for_port(proc, port, "the container's command")
        local = f"http://127.0.0.1:{port}"
        # The deployed service requires a token: none, none runs.
        assert httpx.post(f"{local}/_tasks/shop.send_receipt",
                          json={"order_id": 1, "email": "a@b.c"}).status_code == 401
        shop.send_receipt.delay(42, "ann@example.com")
        (message,) = recorder.pop()
        request = CloudTasksTransport().create_request(shop.app.sender.address(message))
        production = request.task.http_request.url
        assert production == ("https://shop-worker-123456789012.europe-west1.run.app"
                              "/_tasks/shop.send_receipt")
        assert request.task.http_request.oidc_token.audience == production
        # As Cloud Tasks would call the service, but at this machine's address; the token is
        # still for the service's URL and identity, signed by the emulator.
        request.task.http_request.url = f"{local}/_tasks/shop.send_receipt"
        tasks = emulator.tasks_client()
        tasks.create_queue(parent=request.parent.rsplit("/queues/", 1)[0],
                           queue={"name": request.parent})
        tasks.create_task(request=request)
        emulator.wait_idle(timeout=30)
        recent = httpx.get(f"{emulator.http_url}/status").json()["recentDispatches"]
        assert [(d["queue"], d["status"]) for d in recent] == [("emails", 200)]
        assert emulator.pending() == 0
    finally:
        shop.app.transport = before
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert "POST /_tasks/shop.send_receipt HTTP/1.1\" 200" in output, output
