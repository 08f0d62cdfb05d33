"""``celery.ping``: the task an embedded worker is checked with, as in Celery (a shared task:
every app gets it once this module is imported, which :func:`.app.TestApp` does)."""

from __future__ import annotations

from ...shared import shared_task

__all__ = ["ping"]


@shared_task(name="celery.ping")
def ping() -> str:
    """Answers ``"pong"``."""
    return "pong"
