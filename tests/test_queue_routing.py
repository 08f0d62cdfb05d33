"""task_routes in all of Celery's forms, and queue names -> Cloud Tasks queue ids."""

from __future__ import annotations

import re
from typing import Any

import pytest

from celery_gcp import Celery
from celery_gcp.exceptions import ImproperlyConfigured
from celery_gcp.queue_routing import QueueRouter, queue_id


def route_user_tasks(name: str, args: Any, kwargs: Any, options: Any, task: Any = None,
                     **kw: Any) -> dict[str, str] | None:
    if name.startswith("users."):
        return {"queue": "users"}
    return None


def test_dict_exact_glob_and_regex() -> None:
    router = QueueRouter({
        "feed.tasks.import_feed": "feeds",
        "video.*": {"queue": "media"},
        re.compile(r"(image|audio)\.tasks\..*"): {"queue": "media-hi"},
    }, "default")
    assert router.route("feed.tasks.import_feed") == "feeds"
    assert router.route("video.encode") == "media"
    assert router.route("image.tasks.resize") == "media-hi"
    assert router.route("other") == "default"


def test_functions_lists_first_match_and_explicit_queue() -> None:
    def old_style(name: str, args: Any, kwargs: Any, options: Any) -> str | None:
        return "legacy" if name == "legacy.task" else None

    router = QueueRouter([route_user_tasks, old_style, {"users.*": "never-reached"}], "celery")
    assert router.route("users.sync") == "users"
    assert router.route("legacy.task") == "legacy"
    assert router.route("users.sync", options={"queue": "explicit"}) == "explicit"
    assert router.route("plain") == "celery"


def test_router_by_import_name() -> None:
    router = QueueRouter("tests.test_queue_routing.route_user_tasks", "celery")
    assert router.route("users.x") == "users"
    with pytest.raises(ImproperlyConfigured, match="cannot import router"):
        QueueRouter("tests.test_queue_routing.missing", "celery")


def test_route_without_queue_is_an_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="names no queue"):
        QueueRouter({"a": {"priority": 1}}, "celery").route("a")
    # An exchange with no task_queues to match it against: an error, not the default queue.
    with pytest.raises(ImproperlyConfigured, match="task_queues declares no queues"):
        QueueRouter({"a": {"exchange": "x"}}, "celery").route("a")


def test_app_routing_order(app: Celery, sent: list[Any]) -> None:
    app.conf.task_routes = {"proj.*": "routed"}
    app.conf.task_default_queue = "fallback"

    @app.task(name="proj.a")
    def a() -> None: ...

    @app.task(name="other.b")
    def b() -> None: ...

    @app.task(name="proj.c", queue="from-task")
    def c() -> None: ...

    a.delay()
    b.delay()
    c.delay()
    a.apply_async(queue="explicit")
    assert [m.queue for m in sent] == ["routed", "fallback", "from-task", "explicit"]


def test_queue_ids() -> None:
    assert queue_id("celery") == "celery"
    assert queue_id("high_priority") == "high-priority"
    assert queue_id("emails.bulk") == "emails-bulk"
    assert queue_id("Already-Valid-1") == "Already-Valid-1"
    with pytest.raises(ImproperlyConfigured, match="cannot be a Cloud Tasks queue id"):
        queue_id("x" * 101)
    with pytest.raises(ImproperlyConfigured):
        queue_id("")


def test_two_queue_names_with_one_id_are_refused() -> None:
    router = QueueRouter(None, "celery")
    assert router.queue_id("high_priority") == "high-priority"
    assert router.queue_id("high_priority") == "high-priority"
    with pytest.raises(ImproperlyConfigured, match=r"'high_priority' and 'high\.priority'"):
        router.queue_id("high.priority")
