"""Every celery-gcp command fails with one line and a non-zero exit, never a traceback: in
click's runner and in a real process (stderr)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from celery_gcp.cli import main

from .test_app_search import Layout, project  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[1]

APP = textwrap.dedent("""
    from celery_gcp import Celery
    app = Celery("errs")

    @app.task
    def ping() -> str:
        return "pong"
""")


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    """No project, no credentials (no ADC file, no metadata server), no emulator."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "CLOUDSDK_", "CELERY_GCP_"))
           and not k.endswith("_EMULATOR_HOST")}
    env.update(HOME=str(tmp), CLOUDSDK_CONFIG=str(tmp / "gcloud"), NO_GCE_CHECK="True",
               PYTHONPATH=str(ROOT), **extra)
    return env


def fails_in_one_line(args: list[str], tmp: Path, monkeypatch: pytest.MonkeyPatch,
                      expected: str, code: int = 1, **env: str) -> str:
    """Run the command both ways; both print the same single ``Error: ...`` line."""
    environment = clean_env(tmp, **env)
    for key in list(os.environ):
        if key not in environment:
            monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: "), result.output
    assert expected in result.output
    proc = subprocess.run([sys.executable, "-m", "celery_gcp.cli", *args], cwd=tmp,
                          env=environment, capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("Error: "), proc.stderr
    assert expected in proc.stderr, proc.stderr
    return proc.stderr


def test_unknown_app_module(project: Layout, tmp_path: Path,  # noqa: F811
                            monkeypatch: pytest.MonkeyPatch) -> None:
    project({})
    fails_in_one_line(["-A", "missing_proj_xyz", "inspect", "registered"], tmp_path,
                      monkeypatch, "no module named 'missing_proj_xyz'", code=2)


def test_an_app_module_that_raises_on_import(project: Layout, tmp_path: Path,  # noqa: F811
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    project({"raising_proj.py": "import os\nos.environ['NEEDED_SETTING_XYZ']\n"})
    fails_in_one_line(["-A", "raising_proj", "worker"], tmp_path, monkeypatch,
                      "importing module 'raising_proj' (from -A raising_proj) failed: "
                      "KeyError: 'NEEDED_SETTING_XYZ'", code=2)


def test_no_app_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fails_in_one_line(["inspect", "registered"], tmp_path, monkeypatch,
                      "this command needs the app: pass -A module[:attribute]", code=2)


@pytest.mark.parametrize(("args", "expected", "help_of"), [
    (["call", "--bogus"], "No such option '--bogus'. Did you mean '--args'?", " call"),
    (["call"], "Missing argument 'NAME'.", " call"),
    (["--nope"], "No such option '--nope'.", ""),
    (["queues", "frob"], "No such command 'frob'.", " queues"),
])
def test_a_usage_error_is_one_line_naming_the_help(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str,
        help_of: str) -> None:
    line = fails_in_one_line(args, tmp_path, monkeypatch, f"Error: {expected} (see '", code=2)
    assert line.endswith(f"{help_of} --help')\n"), line


@pytest.mark.parametrize("command", [["inspect", "queues"], ["queues", "plan"],
                                     ["queues", "sync"], ["purge", "--yes", "celery"],
                                     ["call", "missing_project.ping"]])
def test_missing_project(project: Layout, tmp_path: Path,  # noqa: F811
                         monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    project({"missing_project.py": APP})
    fails_in_one_line(["-A", "missing_project", *command], tmp_path, monkeypatch,
                      "no Google Cloud project: set gcp_project (or GOOGLE_CLOUD_PROJECT)")


@pytest.mark.parametrize("command", [["queues", "plan"], ["beat", "plan"], ["beat", "sync"]])
def test_missing_credentials(project: Layout, tmp_path: Path,  # noqa: F811
                             monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    project({"no_creds.py": APP})
    fails_in_one_line(["-A", "no_creds", *command], tmp_path, monkeypatch,
                      "no Google Cloud credentials: run `gcloud auth application-default "
                      "login`", GOOGLE_CLOUD_PROJECT="p-test")


def test_a_task_that_is_not_registered(project: Layout, tmp_path: Path,  # noqa: F811
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    project({"unregistered.py": APP})
    line = fails_in_one_line(["-A", "unregistered", "call", "unregistered.nope"], tmp_path,
                             monkeypatch, "task 'unregistered.nope' is not registered in the "
                             "app -A names ('errs'); registered: ")
    assert "registered: unregistered.ping;" in line  # (the process run: no other tests' tasks)
    assert "check that -A imports the module defining it" in line


def test_a_beat_entry_that_does_not_exist(project: Layout, tmp_path: Path,  # noqa: F811
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    project({"no_entry.py": APP + "app.conf.beat_schedule = {'nightly': {'task': "
             "'no_entry.ping', 'schedule': 3600.0}}\n"})
    fails_in_one_line(["-A", "no_entry", "beat", "run", "weekly"], tmp_path, monkeypatch,
                      "beat_schedule has no entry 'weekly'; it has: nightly")


def test_an_app_whose_settings_are_wrong(project: Layout, tmp_path: Path,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    project({"bad_settings.py": APP + "app.conf.update(CELERY_ALWAYS_EAGER=True, "
             "task_default_queue='q')\n"})
    line = fails_in_one_line(["-A", "bad_settings", "inspect", "routes"], tmp_path,
                             monkeypatch, "CELERY_ALWAYS_EAGER")
    assert "ImproperlyConfigured" not in line  # our message, not a class name


def test_an_unexpected_error_is_one_line_unless_the_traceback_is_asked_for(
        project: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    project({"router_bug.py": APP + textwrap.dedent("""
        def route(name, args, kwargs, options, task=None, **kw):
            raise RuntimeError("router bug")

        app.conf.task_routes = (route,)
    """)})
    fails_in_one_line(["-A", "router_bug", "inspect", "routes"], tmp_path, monkeypatch,
                      "unexpected RuntimeError: router bug (set CELERY_GCP_TRACEBACK=1 to see "
                      "the traceback)")
    proc = subprocess.run(
        [sys.executable, "-m", "celery_gcp.cli", "-A", "router_bug", "inspect", "routes"],
        cwd=tmp_path, env=clean_env(tmp_path, CELERY_GCP_TRACEBACK="1"),
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert "RuntimeError: router bug" in proc.stderr
