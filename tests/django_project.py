"""A tiny Django project written into a directory, laid out as Celery's Django guide lays it out:
``proj/settings.py``, ``proj/celery.py`` (the app, ``-A proj``), ``proj/__init__.py`` importing
it, and an installed app ``shop`` (listed by its ``AppConfig``) whose ``tasks.py`` holds
``@shared_task`` tasks. The database is SQLite in the same directory.

The tests run it in subprocesses: Django's settings and app registry are per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

FILES = {
    "proj/__init__.py": """
        from .celery import app as celery_app

        __all__ = ("celery_app",)
    """,
    "proj/settings.py": """
        from pathlib import Path

        SECRET_KEY = "test"
        INSTALLED_APPS = {installed_apps!r}
        ROOT = Path(__file__).resolve().parent.parent
        DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3",
                                  "NAME": str(ROOT / "db.sqlite3")}}}}
        USE_TZ = True
        CELERY_BROKER_URL = "memory://"
        CELERY_TASK_AUTH = "none"
    """,
    "proj/celery.py": """
        import os

        from celery_gcp import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

        app = Celery("proj")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        app.autodiscover_tasks()
    """,
    "shop/__init__.py": "",
    "shop/apps.py": """
        from django.apps import AppConfig


        class ShopConfig(AppConfig):
            name = "shop"
    """,
    "shop/models.py": """
        from django.db import models


        class Order(models.Model):
            total = models.IntegerField(default=0)
    """,
    "shop/tasks.py": """
        from asgiref.sync import sync_to_async
        from django.db import connection

        from celery_gcp import shared_task

        from .models import Order  # models import at the top: Django is set up first

        #: The connection wrappers each run used, to look at after the run.
        used = []


        def _query():
            opened = connection.connection is not None
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            used.append(connection)
            return opened


        @shared_task
        def add(x: int, y: int) -> int:
            return x + y


        @shared_task
        def query() -> bool:
            \"\"\"Whether the thread's connection was open as the body started.\"\"\"
            return _query()


        @shared_task
        async def aquery() -> bool:
            return await sync_to_async(_query)()


        @shared_task
        def count_orders() -> int:
            return Order.objects.count()
    """,
}


def write_project(root: Path, installed_apps: tuple[str, ...] = (
        "django.contrib.contenttypes", "shop.apps.ShopConfig")) -> Path:
    """Write the project under ``root``; returns ``root``."""
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        body = textwrap.dedent(text).lstrip()
        if name == "proj/settings.py":
            body = body.format(installed_apps=list(installed_apps))
        path.write_text(body)
    return root


def run(root: Path, *args: str, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """``python *args`` in the project's directory (on ``sys.path``), without Django's
    settings variable unless ``env`` sets it."""
    environ = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    environ.update({"PYTHONPATH": str(root), **(env or {})})
    return subprocess.run([sys.executable, *args], cwd=root, env=environ, capture_output=True,
                          text=True, timeout=120)


def run_script(root: Path, script: str, **kwargs: Any) -> Any:
    """Run ``script`` (dedented) in the project; it prints one JSON value last: returned."""
    done = run(root, "-W", "error", "-c", textwrap.dedent(script), **kwargs)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
