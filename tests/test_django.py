"""Django, as Celery's Django fixup and ``celery.contrib.django`` serve it: a real project in a
tmp dir (settings, an installed app with ``tasks.py``, SQLite), run in subprocesses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .django_project import run, run_script, write_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path)


def test_autodiscover_finds_the_installed_apps_tasks_after_django_setup(project: Path) -> None:
    # proj/celery.py creates the app before Django is set up; the fixup sets it up at
    # finalize, before shop.tasks (which imports a model at its top) is imported.
    names = run_script(project, """
        import json
        from proj.celery import app
        from django.apps import apps
        ready_before = apps.ready
        names = sorted(n for n in app.tasks if n.startswith("shop."))
        print(json.dumps([ready_before, apps.ready, names]))
    """)
    assert names == [False, True, ["shop.tasks.add", "shop.tasks.aquery", "shop.tasks.count_orders",
                            "shop.tasks.query"]]


def test_cli_inspect_registered_with_the_project_package(project: Path) -> None:
    done = run(project, "-m", "celery_gcp.cli", "-A", "proj", "inspect", "registered")
    assert done.returncode == 0, done.stderr
    assert "shop.tasks.add\tPOST /_tasks/shop.tasks.add" in done.stdout
    assert "shop.tasks.count_orders\t" in done.stdout


def test_tasks_are_django_tasks_unless_the_app_names_its_own_class(project: Path) -> None:
    bases = run_script(project, """
        import json
        from celery_gcp import Celery, Task
        from celery_gcp.contrib.django.task import DjangoTask
        from proj.celery import app
        app.finalize()  # django.setup(), as a worker or `celery-gcp -A proj` does first
        from shop.tasks import add

        class Own(Task):
            pass

        other = Celery("other", task_cls=Own, set_as_current=False)
        print(json.dumps([isinstance(app.tasks["shop.tasks.add"], DjangoTask),
                          callable(add.delay_on_commit), issubclass(other.Task, DjangoTask)]))
    """)
    assert bases == [True, True, False]


def test_delay_on_commit_sends_only_when_the_transaction_commits(project: Path) -> None:
    sent = run_script(project, """
        import json
        from django.db import transaction
        from proj.celery import app
        app.finalize()  # django.setup(), as a worker or `celery-gcp -A proj` does first
        from shop.tasks import add

        app.finalize()
        seen = []
        with transaction.atomic():
            assert add.delay_on_commit(2, 3) is None
            add.apply_async_on_commit((4, 5), countdown=10)
            seen.append(len(app.transport.pop()))   # nothing yet, inside the transaction
        seen.append([(m.task, m.body.decode()) for m in app.transport.pop()])
        try:
            with transaction.atomic():
                add.delay_on_commit(6, 7)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        seen.append(len(app.transport.pop()))       # a rollback sends nothing
        add.delay_on_commit(8, 9)                   # outside a transaction: at once
        seen.append(len(app.transport.pop()))
        print(json.dumps(seen))
    """)
    assert sent[0] == 0
    assert sent[1] == [["shop.tasks.add", '{"x":2,"y":3}'], ["shop.tasks.add", '{"x":4,"y":5}']]
    assert sent[2:] == [0, 1]


SERVED = """
    import json
    import httpx
    from celery_gcp.signals import task_postrun, task_prerun
    from celery_gcp.testing import drain, serve
    from django.db import connection
    from proj.celery import app
    app.finalize()
    from shop import tasks

    open_at_postrun = []

    if TASK == "query":  # a sync run's signals are sent in the thread that runs it
        @task_prerun.connect
        def open_a_connection(**kwargs):
            connection.ensure_connection()   # a connection left open: the fixup closes it next

        @task_postrun.connect
        def still_open(**kwargs):
            open_at_postrun.append(connection.connection is not None)

    with serve(app.asgi_app()) as url, httpx.Client(base_url=url) as client:
        task = getattr(tasks, TASK)
        for _ in range(3):
            task.delay()
        statuses = [response.status_code for _, response in drain(client, app)]
    print(json.dumps({
        "statuses": statuses,
        "open_at_postrun": open_at_postrun,
        "closed_after": [wrapper.connection is None for wrapper in tasks.used],
        "open_at_start": OPEN_AT_START,
    }))
"""


@pytest.mark.parametrize("task", ["query", "aquery"])
def test_a_served_worker_closes_connections_before_and_after_each_run(
        project: Path, task: str) -> None:
    script = SERVED.replace("TASK", repr(task)).replace(
        "OPEN_AT_START", "tasks.opened_at_start")
    script = script.replace("from shop import tasks", "from shop import tasks\n"
                            "    tasks.opened_at_start = []\n"
                            "    _query = tasks._query\n"
                            "    def _recording():\n"
                            "        opened = _query()\n"
                            "        tasks.opened_at_start.append(opened)\n"
                            "        return opened\n"
                            "    tasks._query = _recording")
    seen = run_script(project, script)
    assert seen["statuses"] == [200, 200, 200]
    # Open before the body (a prerun receiver opened one; for the async task, the previous
    # run's in asgiref's thread), closed when it started ...
    assert seen["open_at_start"] == [False, False, False]
    # ... still open when the body ended, and closed after the run.
    assert seen["open_at_postrun"] == ([True, True, True] if task == "query" else [])
    assert seen["closed_after"] == [True, True, True]


def test_autodiscover_warns_when_django_is_not_set_up(project: Path) -> None:
    # The settings variable set after the app was created: no fixup, no django.setup().
    done = run(project, "-W", "error", "-c", """
from celery_gcp import Celery
app = Celery("late")
import os; os.environ["DJANGO_SETTINGS_MODULE"] = "proj.settings"
app.autodiscover_tasks()
app.finalize()
""")
    assert done.returncode != 0
    assert "autodiscover_tasks() found no Django apps: Django is not set up" in done.stderr
    assert "DJANGO_SETTINGS_MODULE before the app is created" in done.stderr


def test_cli_warns_when_installed_apps_is_empty(tmp_path: Path) -> None:
    project = write_project(tmp_path, installed_apps=())
    done = run(project, "-m", "celery_gcp.cli", "-A", "proj.celery", "inspect", "registered")
    assert "autodiscover_tasks() found no Django apps: INSTALLED_APPS is empty" in done.stderr
    assert "shop.tasks" not in done.stdout


def test_eager_runs_keep_the_callers_connection(project: Path) -> None:
    # As in Celery: an eager run (a TestCase's transaction) is not closed under the caller.
    kept = run_script(project, """
        import json
        from django.db import connection
        from proj.celery import app
        app.finalize()  # django.setup(), as a worker or `celery-gcp -A proj` does first
        from shop.tasks import query

        app.conf.task_always_eager = True
        connection.ensure_connection()
        query.delay().get()
        print(json.dumps(connection.connection is not None))
    """)
    assert kept is True


def test_the_settings_variable_without_django_warns(tmp_path: Path) -> None:
    done = run(tmp_path, "-W", "error", "-S", "-c",
               "import sys; sys.path[:0] = " + repr([p for p in sys.path if p]) + "\n"
               "sys.modules['django'] = None\n"
               "from celery_gcp import Celery\nCelery('x')",
               env={"DJANGO_SETTINGS_MODULE": "proj.settings"})
    assert "DJANGO_SETTINGS_MODULE is set but Django is not installed" in done.stderr
