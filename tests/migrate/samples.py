"""Sample Celery projects written for the migrate tests: each a dict of path -> source."""

from __future__ import annotations

from pathlib import Path

#: A FastAPI project: the app module, tasks with canvas and odd formatting, tests with patches.
FASTAPI = {
    "app/worker.py": '''\
import celery
import celery.result as r
from celery import Celery ,  shared_task  # the app and shared tasks
from celery.schedules import (
    crontab,   # keep this comment
)

app = celery.Celery("proj")
app.conf.update(task_soft_time_limit=30, timezone="UTC")
app.conf.beat_schedule = {"tick": {"task": "app.worker.tick", "schedule": crontab(minute="*/5")}}


@app.task(bind=True, soft_time_limit=10)
def tick(self):
    return r.AsyncResult(self.request.id).state


def stop(task_id):
    app.control.revoke(task_id)
''',
    "app/flows.py": '''\
from celery import chain, chord, group
from celery.signals import worker_ready
from .worker import tick


@worker_ready.connect
def ready(**_):
    chord([tick.s() for _ in range(3)])(tick.s())
    group(tick.s(), tick.s()).delay()
''',
    "tests/test_worker.py": '''\
from unittest import mock

from celery.exceptions import Retry
from celery.contrib.abortable import AbortableTask

pytest_plugins = ("celery.contrib.pytest",)


def test_retry(monkeypatch):
    monkeypatch.setattr("celery.result.AsyncResult.get", lambda self: 1)
    with mock.patch("celery.app.task.Task.retry", side_effect=Retry()):
        pass
''',
    "app/broken.py": "def oops(:\n",
}

#: A Django project: proj/celery.py as Celery's docs write it, settings with old names.
DJANGO = {
    "proj/celery.py": '''\
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
''',
    "proj/settings.py": '''\
from celery.schedules import crontab, solar

CELERY_BROKER_URL = "redis://localhost:6379/0"
CELERY_ALWAYS_EAGER = False
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERYBEAT_SCHEDULE = {
    "sunrise": {"task": "polls.tasks.wake", "schedule": solar("sunrise", 48.8, 2.3)},
    "daily": {"task": "polls.tasks.daily", "schedule": crontab(hour=3, minute=0)},
}
''',
    "polls/tasks.py": '''\
from celery import shared_task
from celery.utils.log import get_task_logger

logger = get_task_logger(__name__)


@shared_task(acks_late=True)
def wake():
    logger.info("up")
''',
}


def write(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` under ``root``; returns ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
