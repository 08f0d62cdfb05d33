"""current_app, current_task and @shared_task are proxies as Celery's: isinstance, writes and
deletes reach the object they stand for; app.AsyncResult takes Celery's `id`."""

from __future__ import annotations

import asyncio
import copy
import gc
import pickle
from typing import Any
from unittest import mock

import pytest

import celery_gcp
from celery_gcp import Celery, Task, current_app, current_task, shared_task
from celery_gcp.result import AsyncResult


def test_current_app_is_an_instance_of_celery() -> None:
    app = Celery("proxied")
    assert isinstance(current_app, Celery)
    assert current_app.main == "proxied"
    current_app.conf.task_default_queue = "through-the-proxy"  # writes reach the app
    assert app.conf.task_default_queue == "through-the-proxy"
    copied = pickle.loads(pickle.dumps(current_app))  # as the app itself, as Celery's proxy
    assert type(copied) is Celery
    assert copied.main == "proxied"
    assert type(copy.copy(current_app)) is Celery
    assert current_app == app
    assert hash(current_app) == hash(app)


def test_a_scan_of_live_objects_by_type_never_evaluates_the_proxy() -> None:
    # builtroute.py scans gc objects with type(obj): the proxy's own type is never Celery.
    proxies = [obj for obj in gc.get_objects() if type(obj) is type(current_task)]
    assert proxies
    assert not any(issubclass(type(obj), Celery) for obj in proxies)


def test_shared_task_passes_writes_and_deletes_through_and_is_a_task() -> None:
    @shared_task(bind=True, name="proxies.retrying")
    def retrying(self: Task[Any, Any]) -> str:
        return str(self.retry(countdown=1))

    app = Celery("shared-proxy", broker_url="memory://")
    app.conf.task_always_eager = True
    assert isinstance(retrying, app.Task)
    assert isinstance(retrying, celery_gcp.Task)
    with mock.patch.object(retrying, "retry", return_value="patched") as patched:
        assert retrying.delay().get() == "patched"  # the patch is seen inside the run
    patched.assert_called_once_with(countdown=1)
    assert "retry" not in vars(app.tasks["proxies.retrying"])  # the patch was undone
    retrying.custom_flag = True
    assert app.tasks["proxies.retrying"].custom_flag is True  # type: ignore[attr-defined]
    del retrying.custom_flag
    assert not hasattr(app.tasks["proxies.retrying"], "custom_flag")


def test_async_result_takes_id_as_celery_and_task_id_too() -> None:
    app = Celery("ids", broker_url="memory://")
    assert app.AsyncResult(id="abc").id == "abc"
    assert app.AsyncResult("abc").id == "abc"
    assert app.AsyncResult(task_id="abc").task_id == "abc"
    assert AsyncResult(id="abc", app=app).id == "abc"
    with pytest.raises(TypeError, match="takes the task id once"):
        app.AsyncResult("a", task_id="b")


def test_current_task_is_the_task_being_run_or_none() -> None:
    app = Celery("current-task", broker_url="memory://")
    app.conf.task_always_eager = True
    seen: list[Any] = []

    @app.task
    def which() -> str:
        seen.append(app.current_task)
        return str(current_task.name)

    @app.task
    async def which_async() -> str:
        await asyncio.sleep(0)
        return str(current_task.name)

    assert not current_task
    assert app.current_task is None
    assert which.delay().get() == "tests.test_proxies.which"
    assert seen == [which]
    assert which() == "tests.test_proxies.which"  # called directly, as Celery's stack
    assert asyncio.run(which_async()) == "tests.test_proxies.which_async"
    assert current_task._get_current_object() is None
