"""Sending: delay/apply_async options, send_task, signatures, async sends, publish signals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from celery_gcp import Celery, Signature, chain, group, signature
from celery_gcp.exceptions import CeleryGcpWarning, TaskArgumentError
from celery_gcp.result import AsyncResult
from celery_gcp.signals import after_task_publish, before_task_publish


@pytest.fixture
def add(app: Celery) -> Any:
    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    return add


def test_delay_returns_an_async_result_with_a_fresh_id(add: Any, sent: list[Any]) -> None:
    first, second = add.delay(1, 2), add.delay(3, 4)
    assert isinstance(first, AsyncResult)
    assert first.id != second.id
    assert [m.id for m in sent] == [first.id, second.id]
    assert sent[0].task == "proj.add"
    assert sent[0].root_id == first.id
    assert sent[0].parent_id is None
    assert sent[0].retries == 0


@pytest.mark.parametrize("task_id", ["report-42\n", "a\r\nX-Injected: 1", "café", " padded"])
def test_task_id_that_cannot_travel_in_a_header_is_refused_at_the_call_site(
        add: Any, sent: list[Any], task_id: str) -> None:
    # The id travels in X-Celery-Task-Id: refused here, not as a failed dispatch later.
    with pytest.raises(TaskArgumentError, match="printable ASCII"):
        add.apply_async((1, 2), task_id=task_id)
    assert sent == []


def test_apply_async_task_id_and_kwargs(add: Any, sent: list[Any]) -> None:
    result = add.apply_async(args=(1,), kwargs={"y": 2}, task_id="my-id")
    assert result.id == "my-id"
    assert sent[0].id == "my-id"
    assert json.loads(sent[0].body) == {"x": 1, "y": 2}


def test_countdown_becomes_an_eta(app: Celery, add: Any, sent: list[Any]) -> None:
    before = datetime.now(UTC)
    add.apply_async((1, 2), countdown=30)
    assert before + timedelta(seconds=30) <= sent[0].eta <= datetime.now(UTC) + timedelta(
        seconds=30)


def test_countdown_wins_over_eta(add: Any, sent: list[Any]) -> None:
    eta = datetime(2030, 1, 1, tzinfo=UTC)
    add.apply_async((1, 2), countdown=10, eta=eta)
    assert sent[0].eta < eta - timedelta(days=365)
    add.apply_async((1, 2), countdown=0, eta=eta)  # a zero countdown does not (as in Celery)
    assert sent[1].eta == eta


def test_naive_eta_is_read_in_the_app_timezone(app: Celery, add: Any, sent: list[Any]) -> None:
    app.conf.timezone = "Europe/Paris"
    add.apply_async((1, 2), eta=datetime(2030, 6, 1, 12, 0))
    assert sent[0].eta == datetime(2030, 6, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert sent[0].eta.astimezone(UTC).hour == 10
    app.conf.timezone = None
    add.apply_async((1, 2), eta="2030-06-01T12:00:00")
    assert sent[1].eta == datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def test_expires_in_seconds_or_as_datetime(add: Any, sent: list[Any]) -> None:
    before = datetime.now(UTC)
    add.apply_async((1, 2), expires=60)
    assert sent[0].expires >= before + timedelta(seconds=60)
    when = datetime(2031, 1, 1, tzinfo=UTC)
    add.apply_async((1, 2), expires=when)
    assert sent[1].expires == when


def test_bad_eta_is_an_argument_error(add: Any, sent: list[Any]) -> None:
    with pytest.raises(TaskArgumentError, match="eta= must be a datetime"):
        add.apply_async((1, 2), eta="tomorrow")
    assert sent == []


def test_headers_travel(add: Any, sent: list[Any]) -> None:
    add.apply_async((1, 2), headers={"tenant": "acme", "n": 1})
    assert sent[0].headers == {"tenant": "acme", "n": 1}
    with pytest.raises(TaskArgumentError, match="headers= must be plain JSON"):
        add.apply_async((1, 2), headers={"when": datetime.now(UTC)})


def test_options_without_meaning_warn_once(app: Celery, add: Any, sent: list[Any]) -> None:
    with pytest.warns(CeleryGcpWarning, match="'priority' is ignored") as record:
        add.apply_async((1, 2), priority=9)
        add.apply_async((1, 2), priority=3)
    assert len(record) == 1
    with pytest.warns(CeleryGcpWarning, match="unknown apply_async option 'bogus'"):
        add.apply_async((1, 2), bogus=True)
    with pytest.warns(CeleryGcpWarning, match="serializer='pickle' is ignored"):
        add.apply_async((1, 2), serializer="pickle")
    add.apply_async((1, 2), serializer="json", retry=True, retry_policy={"max_retries": 3},
                    ignore_result=True)
    assert len(sent) == 5


def test_send_task_by_name_validates_registered_tasks(app: Celery, add: Any,
                                                      sent: list[Any]) -> None:
    result = app.send_task("proj.add", (1, 2), countdown=5)
    assert sent[0].task == "proj.add"
    assert json.loads(sent[0].body) == {"x": 1, "y": 2}
    assert result.id == sent[0].id
    with pytest.raises(TaskArgumentError, match="'y'"):
        app.send_task("proj.add", (1, "x"))


def test_send_task_for_a_task_defined_elsewhere(app: Celery, sent: list[Any]) -> None:
    app.send_task("other.service.task", kwargs={"a": 1})
    assert sent[0].task == "other.service.task"
    assert json.loads(sent[0].body) == {"a": 1}
    with pytest.raises(TaskArgumentError, match="positional arguments"):
        app.send_task("other.service.task", (1,))
    with pytest.raises(TaskArgumentError, match="not plain JSON"):
        app.send_task("other.service.task", kwargs={"a": object()})


def test_signatures(add: Any, sent: list[Any]) -> None:
    sig = add.s(1)
    assert isinstance(sig, Signature)
    assert sig == {"task": "proj.add", "args": [1], "kwargs": {}, "options": {},
                   "subtask_type": None, "immutable": False}
    sig.set(countdown=10, queue="slow")
    sig.delay(2)
    assert json.loads(sent[0].body) == {"x": 2, "y": 1}
    assert sent[0].queue == "slow"
    assert sent[0].eta is not None
    add.si(5, 5).apply_async((99,))
    assert json.loads(sent[1].body) == {"x": 5, "y": 5}
    assert add.signature((1, 1), countdown=3).options == {"countdown": 3}
    assert signature("proj.add", args=(1, 2)).task == "proj.add"
    assert sig(3) == 4  # calling a signature calls the function here
    assert repr(add.s(1, y=2)) == "proj.add(1, y=2)"


def test_link_and_link_error_travel_as_signatures(app: Celery, add: Any,
                                                  sent: list[Any]) -> None:
    add.apply_async((1, 2), link=add.s(10), link_error=[add.si(0, 0)])
    assert sent[0].link[0]["task"] == "proj.add"
    assert sent[0].link[0]["args"] == [10]
    assert sent[0].link_error[0]["immutable"] is True
    with pytest.raises(TaskArgumentError, match="link= takes signatures"):
        add.apply_async((1, 2), link="proj.add")


def test_chain_links_each_step_to_the_next(add: Any, sent: list[Any]) -> None:
    chain(add.s(1, 1), add.s(10), add.s(100)).apply_async()
    [first] = sent
    assert json.loads(first.body) == {"x": 1, "y": 1}
    second = first.link[0]
    assert second["args"] == [10]
    assert second["options"]["link"][0]["args"] == [100]
    assert repr(add.s(1, 1) | add.s(2)) == "proj.add(1, 1) | proj.add(2)"


def test_group_sends_every_signature(add: Any, sent: list[Any]) -> None:
    results = group(add.s(i, i) for i in range(3)).apply_async()
    assert [r.id for r in results] == [m.id for m in sent]
    assert [json.loads(m.body)["x"] for m in sent] == [0, 1, 2]


async def test_adelay_and_aapply_async(add: Any, sent: list[Any]) -> None:
    result = await add.adelay(1, 2)
    assert sent[0].id == result.id
    await add.aapply_async((3, 4), countdown=5)
    assert json.loads(sent[1].body) == {"x": 3, "y": 4}


def test_publish_signals(add: Any, sent: list[Any], receive: Any) -> None:
    before = receive(before_task_publish)
    after = receive(after_task_publish)
    result = add.apply_async((1, 2), queue="q1")
    assert before[0]["sender"] == "proj.add"
    assert before[0]["headers"]["id"] == result.id
    assert before[0]["headers"]["task"] == "proj.add"
    assert before[0]["routing_key"] == "q1"
    assert after[0]["headers"]["id"] == result.id


def test_signal_receiver_errors_do_not_stop_sending(add: Any, sent: list[Any],
                                                    caplog: Any) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    before_task_publish.connect(broken)
    try:
        add.delay(1, 2)
    finally:
        before_task_publish.disconnect(broken)
    assert len(sent) == 1
    assert "receiver bug" in caplog.text


def test_unconnected_signals_leave_no_trace(add: Any, sent: list[Any]) -> None:
    assert before_task_publish.receivers == []
    add.delay(1, 2)


def test_chain_and_group_apply_run_every_step_here(app: Celery, add: Any,
                                                    sent: list[Any]) -> None:
    assert chain(add.s(1, 1), add.s(10), add.s(100)).apply().get() == 112
    assert group(add.s(i, i) for i in range(3)).apply().get() == [0, 2, 4]
    assert sent == []
    chain(add.s(1, 1), add.s(2))()
    group([add.s(1, 1)])()
    assert len(sent) == 2


def test_task_level_execution_options_are_call_defaults(app: Celery, sent: list[Any]) -> None:
    @app.task(name="proj.short_lived", expires=60, queue="fast")
    def short_lived() -> None: ...

    before = datetime.now(UTC)
    short_lived.delay()
    short_lived.apply_async(expires=3600, queue="slow")
    assert before + timedelta(seconds=60) <= sent[0].expires < before + timedelta(seconds=120)
    assert sent[0].queue == "fast"
    assert sent[1].expires > before + timedelta(seconds=3000)
    assert sent[1].queue == "slow"


def test_send_task_skips_none_options_and_warns_in_eager_mode(app: Celery, add: Any,
                                                               sent: list[Any]) -> None:
    app.send_task("proj.add", (1, 2), priority=None, countdown=None)  # no warning
    from celery_gcp.exceptions import AlwaysEagerIgnored

    app.conf.task_always_eager = True
    with pytest.warns(AlwaysEagerIgnored, match="no effect on send_task"):
        app.send_task("proj.add", (1, 2))
    assert len(sent) == 2
