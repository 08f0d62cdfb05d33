"""celery_gcp.kombu: the kombu names Celery projects import next to their settings.

``task_queues`` of ``Queue`` objects (or dicts) declare Cloud Tasks queues, and routes that
name a routing key or exchange instead of a queue reach the queue a broker would deliver to,
or raise; a failed send is a ``kombu.exceptions.OperationalError``.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from celery_gcp import Celery
from celery_gcp.exceptions import ImproperlyConfigured, TransportError
from celery_gcp.kombu import Exchange, Queue, binding
from celery_gcp.kombu.exceptions import OperationalError
from celery_gcp.platform import TASKS_VARIABLE
from celery_gcp.queues import queue_names


def _queue_of(app: Celery, name: str, **options: Any) -> str:
    @app.task(name=name)
    def noop() -> None: ...

    noop.apply_async(**options)
    queue: str = app.transport.sent[-1].queue  # type: ignore[attr-defined]
    return queue


def test_routes_by_routing_key_reach_the_bound_queue(app: Celery) -> None:
    media = Exchange("media", type="direct")
    app.conf.task_queues = (
        Queue("default", routing_key="default"),
        Queue("videos", media, routing_key="media.video"),
        Queue("images", media, routing_key="media.image"),
    )
    app.conf.task_routes = {
        "proj.encode": {"exchange": "media", "routing_key": "media.video"},
        "proj.resize": {"routing_key": "media.image"},
        "proj.queued": {"queue": Queue("images")},
        "proj.object": Queue("videos"),
    }
    assert _queue_of(app, "proj.encode") == "videos"
    assert _queue_of(app, "proj.resize") == "images"
    assert _queue_of(app, "proj.queued") == "images"
    assert _queue_of(app, "proj.object") == "videos"
    assert _queue_of(app, "proj.other") == "celery"  # no route: the default queue
    assert {"default", "videos", "images"} <= set(queue_names(app))


def test_topic_exchanges_match_patterns_as_a_broker_does(app: Celery) -> None:
    # Celery's routing guide: a topic default exchange, queues bound by pattern.
    app.conf.update(
        task_default_exchange="tasks", task_default_exchange_type="topic",
        task_queues=(Queue("default", routing_key="task.#"),
                     Queue("feed_tasks", routing_key="feed.#"),
                     Queue("one_word", routing_key="single.*")),
        task_routes={"feeds.import": {"routing_key": "feed.import.rss"},
                     "tasks.add": {"exchange": "tasks", "routing_key": "task.add"},
                     "tasks.single": {"routing_key": "single.x"},
                     "tasks.deep": {"routing_key": "single.x.y"}},
    )
    assert _queue_of(app, "feeds.import") == "feed_tasks"
    assert _queue_of(app, "tasks.add") == "default"
    assert _queue_of(app, "tasks.single") == "one_word"
    with pytest.raises(ImproperlyConfigured, match="reaches no queue of task_queues"):
        _queue_of(app, "tasks.deep")


def test_dict_task_queues_and_bindings_lists(app: Celery) -> None:
    app.conf.task_queues = {
        "high": {"exchange": "jobs", "routing_key": "jobs.high"},
        "low": {"exchange": "jobs", "binding_key": "jobs.low"},
        "multi": Queue("multi", [binding("events", routing_key="a"),
                                 binding("events", routing_key="b")]),
    }
    app.conf.task_routes = {"jobs.urgent": {"exchange": "jobs", "routing_key": "jobs.high"},
                            "jobs.later": {"routing_key": "jobs.low"},
                            "events.b": {"exchange": "events", "routing_key": "b"}}
    assert _queue_of(app, "jobs.urgent") == "high"
    assert _queue_of(app, "jobs.later") == "low"
    assert _queue_of(app, "events.b") == "multi"


def test_a_route_that_reaches_no_queue_or_several_raises(app: Celery) -> None:
    app.conf.task_routes = {"proj.keyed": {"routing_key": "nowhere"}}
    with pytest.raises(ImproperlyConfigured, match="task_queues declares no queues"):
        _queue_of(app, "proj.keyed")  # never silently the default queue

    broadcast = Exchange("broadcast", type="fanout")
    app.conf.task_queues = [Queue("a", broadcast), Queue("b", broadcast),
                            Queue("c", "direct_ex", routing_key="c")]
    app.conf.task_routes = {"proj.fan": {"exchange": "broadcast"},
                            "proj.keyed": {"routing_key": "nowhere"},
                            "proj.wrong_exchange": {"exchange": "direct_ex", "routing_key": "a"}}
    with pytest.raises(ImproperlyConfigured, match="reaches the queues a, b"):
        _queue_of(app, "proj.fan")
    with pytest.raises(ImproperlyConfigured, match="'nowhere', which reaches no queue"):
        _queue_of(app, "proj.keyed")
    with pytest.raises(ImproperlyConfigured, match="reaches no queue"):
        _queue_of(app, "proj.wrong_exchange")


def test_queue_and_exchange_keep_kombus_shape() -> None:
    queue = Queue("q", Exchange("ex", "topic", durable=True), routing_key="k.#",
                  queue_arguments={"x-max-priority": 10}, durable=True)
    assert queue.exchange == Exchange("ex", "topic")
    assert queue.exchange is not None
    assert queue.exchange.type == "topic"
    assert queue.routing_key == "k.#"
    assert queue.options == {"queue_arguments": {"x-max-priority": 10}, "durable": True}
    assert Queue("q", "ex").exchange == Exchange("ex")


def test_a_failed_send_is_kombus_operational_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nothing listens on: the emulator is stopped
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(TASKS_VARIABLE, f"127.0.0.1:{port}")
    app = Celery("proj", set_as_current=False, gcp_project="p", gcp_location="l",
                 task_base_url="http://127.0.0.1:9", task_auth="none")

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(OperationalError) as info:
        add.delay(1, 2)
    assert isinstance(info.value, TransportError)
    assert "did not take the task" in str(info.value)
    from celery_gcp import exceptions

    assert OperationalError is exceptions.OperationalError
    assert issubclass(exceptions.TransportError, exceptions.OperationalError)
