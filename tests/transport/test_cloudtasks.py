"""The Cloud Tasks transport end to end: app -> official client -> emulator -> HTTP -> worker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from celery_gcp import Celery, Task, group
from celery_gcp.emulator.task_calls import BATCH_ENTRY
from celery_gcp.exceptions import (
    DuplicateTaskError,
    MessageTooLargeError,
    TransportError,
)

from .conftest import Ran, Stack


def basic_tasks(app: Celery, ran: Ran) -> None:
    @app.task(name="proj.add", bind=True)
    def add(self: Task[Any, Any], x: int, y: int) -> int:
        ran.record("add", {"sum": x + y, "task_name": self.request.cloudtasks.task_name,
                           "queue": self.request.cloudtasks.queue_name})
        return x + y


def test_delay_runs_through_cloud_tasks(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    result = stack.app.tasks["proj.add"].delay(2, 3)
    [(_, value)] = stack.ran.wait_for(1)
    assert value == {"sum": 5, "task_name": result.id, "queue": "celery"}
    assert result.location == f"projects/p/locations/l/queues/celery/tasks/{result.id}"


def test_routed_queue_and_queue_id_mapping(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks, task_routes={"proj.*": "high_priority"})
    stack.queue("high-priority")
    stack.app.tasks["proj.add"].delay(1, 1)
    assert stack.ran.wait_for(1)[0][1]["queue"] == "high-priority"


def test_countdown_becomes_schedule_time(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks, manual_clock=True)
    assert stack.clock is not None
    result = stack.app.tasks["proj.add"].apply_async((1, 2), countdown=120)
    task = stack.emu.tasks_client().get_task(name=result.location)
    assert task.schedule_time.timestamp() == pytest.approx(stack.clock.now() + 120, abs=2)
    assert result.state == "PENDING"
    stack.clock.advance(121)
    assert stack.ran.wait_for(1)[0][1]["sum"] == 3


def test_retry_creates_a_named_retry_task(stack_factory: Any) -> None:
    def define(app: Celery, ran: Ran) -> None:
        @app.task(name="proj.flaky", bind=True)
        def flaky(self: Task[Any, Any]) -> None:
            ran.record("flaky", {"retries": self.request.retries,
                                 "name": self.request.cloudtasks.task_name})
            if self.request.retries < 2:
                raise self.retry(countdown=0.1)

    stack: Stack = stack_factory(define)
    result = stack.app.tasks["proj.flaky"].delay()
    runs = [value for _, value in stack.ran.wait_for(3)]
    assert runs == [{"retries": 0, "name": result.id}, {"retries": 1, "name": f"{result.id}-r1"},
                    {"retries": 2, "name": f"{result.id}-r2"}]


def test_caller_task_id_is_opt_in_dedup(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    add = stack.app.tasks["proj.add"]
    stack.emu.tasks_client().pause_queue(name="projects/p/locations/l/queues/celery")
    add.apply_async((1, 1), task_id="order-42")
    with pytest.raises(DuplicateTaskError, match="order-42"):
        add.apply_async((1, 1), task_id="order-42")
    again = add.apply_async((1, 1), task_id="order-42", on_duplicate="ignore")
    assert again.id == "order-42"


def test_revoke_deletes_a_task_not_yet_run(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    add = stack.app.tasks["proj.add"]
    later = add.apply_async((1, 1), countdown=3600)
    assert later.state == "PENDING"
    assert later.revoke() is True
    assert later.revoke() is False
    add.delay(5, 5)
    assert [v["sum"] for _, v in stack.ran.wait_for(1)] == [10]


def test_oversized_message_fails_at_the_call_site(stack_factory: Any) -> None:
    def define(app: Celery, ran: Ran) -> None:
        @app.task(name="proj.blob")
        def blob(data: str) -> None: ...

    stack: Stack = stack_factory(define)
    with pytest.raises(MessageTooLargeError, match=r"1,048,576-byte limit"):
        stack.app.tasks["proj.blob"].delay("x" * (1024 * 1024))


def test_time_limit_and_oidc_reach_the_task(stack_factory: Any) -> None:
    def define(app: Celery, ran: Ran) -> None:
        @app.task(name="proj.limited", time_limit=60)
        def limited() -> None: ...

    stack: Stack = stack_factory(define, gcp_service_account="tasks@p.iam.gserviceaccount.com")
    stack.emu.tasks_client().pause_queue(name="projects/p/locations/l/queues/celery")
    result = stack.app.tasks["proj.limited"].delay()
    task = stack.emu.tasks_client().get_task(request={"name": result.location,
                                                      "response_view": "FULL"})
    assert task.dispatch_deadline == timedelta(seconds=60)
    assert task.http_request.oidc_token.service_account_email == "tasks@p.iam.gserviceaccount.com"
    assert task.http_request.oidc_token.audience == f"{stack.url}/_tasks/proj.limited"
    assert task.http_request.headers["X-Celery-Task-Id"] == result.id


def test_eta_beyond_30_days_is_relayed(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks, manual_clock=True)
    assert stack.clock is not None
    eta = datetime.fromtimestamp(stack.clock.now(), UTC) + timedelta(days=45)
    result = stack.app.tasks["proj.add"].apply_async((20, 22), eta=eta)
    client = stack.emu.tasks_client()
    [hop] = list(client.list_tasks(parent="projects/p/locations/l/queues/celery"))
    assert hop.name == result.location
    assert hop.name.rsplit("/", 1)[1].startswith(f"{result.id}-h")
    assert hop.schedule_time.timestamp() < stack.clock.now() + 30 * 86400
    stack.clock.advance(30 * 86400)
    stack.emu.wait_idle()
    [relayed] = list(client.list_tasks(parent="projects/p/locations/l/queues/celery"))
    assert relayed.schedule_time.timestamp() == pytest.approx(eta.timestamp(), abs=1e-3)
    assert stack.ran.calls == []
    stack.clock.advance(15 * 86400 + 1)  # the ETA carries microseconds; pass it for sure
    assert stack.ran.wait_for(1)[0][1]["sum"] == 42


def test_group_sends_in_bulk_with_results_in_order(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    add = stack.app.tasks["proj.add"]
    results = group(add.s(i, i) for i in range(50)).apply_async()
    assert len(results) == 50
    runs = stack.ran.wait_for(50)
    assert sorted(v["sum"] for _, v in runs) == [2 * i for i in range(50)]
    assert [r.id for r in results] == [r.id for r in results.results]


def two_queue_tasks(app: Celery, ran: Ran) -> None:
    basic_tasks(app, ran)

    @app.task(name="proj.mul", bind=True)
    def mul(self: Task[Any, Any], x: int, y: int) -> int:
        ran.record("mul", {"sum": x * y, "task_name": self.request.cloudtasks.task_name,
                           "queue": self.request.cloudtasks.queue_name})
        return x * y


def operations(stack: Stack) -> int:
    """How many BatchCreateTasks calls the emulator answered."""
    assert stack.emu.server is not None
    return len(stack.emu.server.tasks.operations._by_name)


def test_group_batches_per_queue_100_at_a_time(stack_factory: Any) -> None:
    stack: Stack = stack_factory(two_queue_tasks, task_routes={"proj.mul": "other"})
    stack.queue("other")
    add, mul = stack.app.tasks["proj.add"], stack.app.tasks["proj.mul"]
    signatures = [add.s(i, 1) if i % 5 else mul.s(i, 2) for i in range(250)]  # 200 + 50
    results = group(signatures).apply_async()
    runs = stack.ran.wait_for(250)
    assert operations(stack) == 3  # celery: 100 + 100; other: 50
    by_id = {v["task_name"]: (name, v["sum"], v["queue"]) for name, v in runs}
    assert [by_id[r.id] for r in results] == [
        ("add", i + 1, "celery") if i % 5 else ("mul", i * 2, "other") for i in range(250)]


def test_bulk_send_survives_transient_failures(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    add = stack.app.tasks["proj.add"]
    faults = stack.emu.faults
    faults.fail_rpc("BatchCreateTasks", grpc.StatusCode.UNAVAILABLE)  # before: nothing made
    faults.fail_rpc("BatchCreateTasks", grpc.StatusCode.DEADLINE_EXCEEDED, after=True)
    faults.fail_rpc(BATCH_ENTRY, grpc.StatusCode.UNAVAILABLE, times=3)  # single entries
    faults.fail_rpc(BATCH_ENTRY, grpc.StatusCode.INTERNAL, times=2, after=True)
    results = group(add.s(i, 0) for i in range(300)).apply_async()
    runs = stack.ran.wait_for(300, timeout=30)
    stack.emu.wait_idle(timeout=30)
    names = [v["task_name"] for _, v in stack.ran.calls]
    assert sorted(names) == sorted(r.id for r in results)
    assert len(set(names)) == 300
    assert sorted(v["sum"] for _, v in runs) == list(range(300))


def test_bulk_send_names_duplicates_and_can_ignore_them(stack_factory: Any) -> None:
    from celery_gcp.exceptions import PartialSendError

    stack: Stack = stack_factory(basic_tasks)
    add = stack.app.tasks["proj.add"]
    add.apply_async((1, 1), task_id="order-7")
    with pytest.raises(PartialSendError) as info:
        group(add.s(2, 2), add.s(3, 3).set(task_id="order-7")).apply_async()
    assert isinstance(info.value.results[1], DuplicateTaskError)
    assert "order-7" in str(info.value.results[1])
    results = group(add.s(4, 4).set(task_id="order-7"), add.s(5, 5)).apply_async(
        on_duplicate="ignore")
    assert results[0].id == "order-7"
    assert sorted(v["sum"] for _, v in stack.ran.wait_for(3)) == [2, 4, 10]


def test_bulk_send_falls_back_to_single_creates(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    add = stack.app.tasks["proj.add"]
    stack.emu.faults.fail_rpc("BatchCreateTasks", grpc.StatusCode.UNIMPLEMENTED, times=99)
    results = group(add.s(i, 0) for i in range(120)).apply_async()
    runs = stack.ran.wait_for(120)
    assert sorted(v["task_name"] for _, v in runs) == sorted(r.id for r in results)
    assert operations(stack) == 0


async def test_async_bulk_send(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    add = stack.app.tasks["proj.add"]
    stack.emu.faults.fail_rpc(BATCH_ENTRY, grpc.StatusCode.UNAVAILABLE, times=2)
    messages = [add.s(i, 0).message() for i in range(150)]
    outcomes = await stack.app.transport.asend_many(messages)
    assert [o.task_id for o in outcomes if not isinstance(o, Exception)] == [
        m.id for m in messages]
    runs = await asyncio.to_thread(stack.ran.wait_for, 150)
    assert sorted(v["sum"] for _, v in runs) == list(range(150))
    assert operations(stack) == 3  # 100 + 50, and the two entries sent again


async def test_adelay_on_the_async_client(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    result = await stack.app.tasks["proj.add"].adelay(4, 4)
    ran = await asyncio.to_thread(stack.ran.wait_for, 1)
    assert ran[0][1]["task_name"] == result.id


def test_transient_failures_lose_nothing_and_run_nothing_twice(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    add = stack.app.tasks["proj.add"]
    faults = stack.emu.faults
    ids = []
    for i in range(1000):
        if i % 10 == 3:
            faults.fail_rpc("CreateTask", grpc.StatusCode.UNAVAILABLE)
        elif i % 10 == 7:
            faults.fail_rpc("CreateTask", grpc.StatusCode.DEADLINE_EXCEEDED, after=True)
        ids.append(add.delay(i, 0).id)
    runs = stack.ran.wait_for(1000, timeout=60)
    stack.emu.wait_idle(timeout=30)
    names = [v["task_name"] for _, v in stack.ran.calls]
    assert sorted(names) == sorted(ids)
    assert len(set(names)) == 1000
    assert sorted(v["sum"] for _, v in runs) == list(range(1000))


def test_retry_policy_gives_up_with_a_clear_error(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    stack.emu.faults.fail_rpc("CreateTask", grpc.StatusCode.UNAVAILABLE, times=5)
    with pytest.raises(TransportError, match="did not take the task"):
        stack.app.tasks["proj.add"].apply_async((1, 1), retry_policy={"max_retries": 2})
    with pytest.raises(TransportError):
        stack.app.tasks["proj.add"].apply_async((1, 1), retry=False)


def test_missing_credentials_say_what_to_do(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Any) -> None:
    # Every credential source is absent, and the metadata server is pointed at a closed
    # loopback port, so google-auth finds nothing without leaving the machine.
    for variable in ("CLOUD_TASKS_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    # No probe of the metadata server either (3 attempts with backoff, about 3 s): google-auth
    # reads NO_GCE_CHECK ("true") once, when it is imported, so its switch is set as well.
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setattr("google.auth.compute_engine._metadata._NO_GCE_CHECK", True)
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    app = Celery("proj", gcp_project="p", task_base_url="https://worker.example")

    @app.task
    def t() -> None: ...

    with pytest.raises(TransportError, match="gcloud auth application-default login"):
        t.delay()


def test_message_body_is_the_wire_format(stack_factory: Any) -> None:
    stack: Stack = stack_factory(basic_tasks)
    stack.emu.tasks_client().pause_queue(name="projects/p/locations/l/queues/celery")
    result = stack.app.tasks["proj.add"].delay(7, 8)
    task = stack.emu.tasks_client().get_task(request={"name": result.location,
                                                      "response_view": "FULL"})
    assert json.loads(task.http_request.body) == {"x": 7, "y": 8}
    assert task.http_request.url == f"{stack.url}/_tasks/proj.add"


def test_bulk_send_reports_each_failure_and_sends_the_rest(stack_factory: Any) -> None:
    from celery_gcp.exceptions import PartialSendError

    stack: Stack = stack_factory(basic_tasks)
    add = stack.app.tasks["proj.add"]
    stack.emu.faults.fail_rpc(BATCH_ENTRY, grpc.StatusCode.PERMISSION_DENIED, times=1)
    with pytest.raises(PartialSendError, match="1 of 20 messages were not sent") as info:
        group(add.s(i, 0) for i in range(20)).apply_async()
    failed = [r for r in info.value.results if isinstance(r, Exception)]
    sent = [r for r in info.value.results if not isinstance(r, Exception)]
    assert len(failed) == 1
    assert isinstance(failed[0], TransportError)
    assert "PERMISSION_DENIED" in str(failed[0]) or "403" in str(failed[0])
    runs = stack.ran.wait_for(19)
    assert sorted(v["task_name"] for _, v in runs) == sorted(r.id for r in sent)
