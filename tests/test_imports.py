"""What each entry point imports, each checked in a fresh interpreter.

A process that only talks to an emulator must not load the emulator's server; importing the
package or the emulator must not load the app (and with it FastAPI and pydantic); the Cloud
Tasks transport loads Google's client libraries on first send, not at import.
"""

from __future__ import annotations

import os
import subprocess
import sys

from celery_gcp.platform import CERTS_URL_VARIABLE, SCHEDULER_VARIABLE, TASKS_VARIABLE

#: The emulator's server side: none of it is needed to make a client for an emulator.
SERVER = ("celery_gcp.emulator.server", "celery_gcp.emulator.tasks_service",
          "celery_gcp.emulator.scheduler_service", "celery_gcp.emulator.queues",
          "celery_gcp.emulator.jobs", "celery_gcp.emulator.dispatch", "celery_gcp.emulator.store",
          "celery_gcp.emulator.web", "celery_gcp.emulator.oidc", "celery_gcp.emulator.core",
          "celery_gcp.emulator.rpc", "celery_gcp.emulator.operations")
#: What the emulator serves its HTTP side with (and the worker its endpoints).
HTTP = ("starlette", "uvicorn")
#: The app and what it is built on.
APP = ("celery_gcp.app", "fastapi", "pydantic")


def loaded(code: str, **environ: str) -> list[str]:
    """The modules loaded after running ``code`` in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items()
           if k not in (TASKS_VARIABLE, SCHEDULER_VARIABLE, CERTS_URL_VARIABLE)}
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(*sorted(sys.modules))"],
        capture_output=True, text=True, env={**env, **environ}, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def among(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    """The ``modules`` that are one of ``packages`` or inside one."""
    return [m for m in modules if m in packages or m.startswith(tuple(p + "." for p in packages))]


def test_importing_the_emulator_loads_neither_the_app_nor_its_server() -> None:
    modules = loaded("import celery_gcp.emulator")
    assert among(modules, APP) == []
    assert among(modules, SERVER + HTTP) == []


def test_the_emulators_public_names_still_import() -> None:
    modules = loaded("from celery_gcp.emulator import (Clock, Emulator, EmulatorServer, Faults, "
                     "ManualClock, async_scheduler_client, async_tasks_client, "
                     "scheduler_client, tasks_client)")
    assert "celery_gcp.emulator.server" in modules  # EmulatorServer, loaded when asked for
    assert among(modules, APP) == []


def test_clients_for_an_emulator_load_no_emulator_server() -> None:
    address = "127.0.0.1:1"  # making a client does not connect
    code = ("import asyncio\n"
            "from celery_gcp import gcp\n"
            "gcp.tasks_client(); gcp.scheduler_client()\n"
            "async def make():\n"
            "    gcp.tasks_client(asynchronous=True); gcp.scheduler_client(asynchronous=True)\n"
            "asyncio.run(make())")
    modules = loaded(code, **{TASKS_VARIABLE: address, SCHEDULER_VARIABLE: address})
    assert "google.cloud.tasks_v2" in modules
    assert "google.cloud.scheduler_v1" in modules
    assert among(modules, SERVER + HTTP) == []
    assert among(modules, APP) == []


def test_the_fastapi_emulator_clients_load_no_emulator_server() -> None:
    code = ("import asyncio\n"
            "from celery_gcp.fastapi import async_emulator_client, emulator_client\n"
            "emulator_client(host='127.0.0.1:1')\n"
            "async def make():\n"
            "    async_emulator_client(host='127.0.0.1:1')\n"
            "asyncio.run(make())")
    modules = loaded(code)
    assert "google.cloud.tasks_v2" in modules
    assert among(modules, SERVER) == []


def test_importing_the_package_loads_no_client_library_emulator_or_backend() -> None:
    modules = loaded("import celery_gcp")
    assert among(modules, ("google.cloud", "google.api_core", "grpc", "celery_gcp.emulator",
                           "sqlalchemy", "redis", "opentelemetry")) == []
    assert among(modules, APP) == []


def test_the_platform_constants_load_nothing_else() -> None:
    modules = loaded("import celery_gcp.platform")
    assert among(modules, ("celery_gcp",)) == ["celery_gcp", "celery_gcp.platform"]


def test_the_cloud_tasks_transport_loads_google_libraries_on_first_send() -> None:
    modules = loaded("import celery_gcp.transport.cloudtasks")
    assert among(modules, ("google.cloud", "google.api_core", "grpc")) == []
    assert among(modules, ("celery_gcp.app",)) == []


def test_the_command_line_loads_no_app_until_a_command_needs_one() -> None:
    # `celery-gcp emulator` (the process `dev` starts) serves no app: its start-up loads none.
    modules = loaded("import celery_gcp.cli")
    assert among(modules, APP) == []
    assert among(modules, SERVER) == []
