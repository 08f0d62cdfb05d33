"""Fixtures for interop tests against the third-party gcloud-tasks-emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .gcloud_tasks_emulator import LOOPBACK, GcloudTasksEmulator, PortReservation, ensure_venv


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "interop: runs against a third-party emulator (deselect with -m 'not interop')"
    )


@pytest.fixture(scope="session")
def gcloud_tasks_emulator() -> Iterator[GcloudTasksEmulator]:
    """A ``gcloud-tasks-emulator`` for the session, on ``127.0.0.1`` only.

    ``.address`` is ``"127.0.0.1:PORT"`` for ``grpc.insecure_channel``. HTTP tasks are sent
    to their own ``http_request.url``. App Engine tasks are sent to
    ``http://{.target_host}:{.target_port}{relative_uri}``: that port is reserved for the
    session, and a test serves on it with ``RecordingHTTPTarget(port=emulator.target_port)``
    (one such test at a time). Use a fresh queue per test: ``unique_queue_id()``.
    """
    python = ensure_venv()
    with (
        PortReservation(LOOPBACK) as app_engine_target,
        GcloudTasksEmulator(
            python=python, target_host=LOOPBACK, target_port=app_engine_target.port
        ) as emulator,
    ):
        yield emulator
