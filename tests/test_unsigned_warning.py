"""An app whose tasks would carry no OIDC token while callers are verified (task_auth="oidc",
the default, and no gcp_service_account) says so at its first send, once."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from celery_gcp import Celery
from celery_gcp.emulator import Emulator
from celery_gcp.exceptions import CeleryGcpWarning

PARENT = "projects/p/locations/l"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as emu:
        for name, value in emu.environ().items():
            monkeypatch.setenv(name, value)
        emu.tasks_client().create_queue(parent=PARENT, queue={"name": f"{PARENT}/queues/q"})
        yield emu


def _app(**settings: object) -> Celery:
    app = Celery("proj", set_as_current=False, gcp_project="p", gcp_location="l",
                 task_default_queue="q", task_base_url="http://127.0.0.1:9", **settings)

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    return app


def test_the_first_send_without_a_service_account_warns_once(emulator: Emulator) -> None:
    app = _app(task_auth="oidc")
    with pytest.warns(CeleryGcpWarning, match="gcp_service_account is not set") as seen:
        app.tasks["proj.add"].delay(1, 2)
    assert seen[0].filename == __file__  # points at the call
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.tasks["proj.add"].delay(2, 3)
        app.send_task("proj.add", kwargs={"x": 1, "y": 1}, queue="q")
    tasks = emulator.tasks_client().list_tasks(parent=f"{PARENT}/queues/q")
    assert len(list(tasks)) == 3  # still sent: a warning, not a refusal


def test_no_warning_with_an_account_without_verification_or_without_cloud_tasks(
        emulator: Emulator) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _app(task_auth="oidc", gcp_service_account="sa@p.iam.gserviceaccount.com"
             ).tasks["proj.add"].delay(1, 2)
        _app(task_auth="none").tasks["proj.add"].delay(1, 2)
        _app(task_auth="oidc", broker_url="memory://").tasks["proj.add"].delay(1, 2)
        _app(task_auth="oidc", task_always_eager=True).tasks["proj.add"].delay(1, 2)
