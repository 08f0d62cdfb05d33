"""Cloud Tasks conformance: the official client against the emulator, dispatching to real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from celery_gcp.emulator import Emulator, ManualClock

from .conftest import Handler

Make = Callable[..., Any]


def ts(when: float) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromNanoseconds(int(when * 1e9))
    return out


def seconds(value: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(int(value * 1e9))
    return out


def http_task(url: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
    task: dict[str, Any] = {"http_request": {"url": url, "http_method": "POST",
                                             "body": b"{}", **fields.pop("http", {})}, **fields}
    if name:
        task["name"] = name
    return task


# -- queues ---------------------------------------------------------------------------------


def test_queue_lifecycle_with_service_defaults(emu: Emulator, make_queue: Make) -> None:
    client = emu.tasks_client()
    queue = make_queue("orders")
    assert queue.state == tasks_v2.Queue.State.RUNNING
    assert queue.rate_limits.max_dispatches_per_second == 500
    assert queue.rate_limits.max_concurrent_dispatches == 1000
    assert queue.retry_config.max_attempts == 100
    assert queue.retry_config.min_backoff == timedelta(seconds=0.1)
    assert queue.retry_config.max_backoff == timedelta(seconds=3600)
    assert queue.retry_config.max_doublings == 16
    assert client.get_queue(name=queue.name).name == queue.name
    make_queue("other")
    listed = list(client.list_queues(request={"parent": emu.location, "page_size": 1}))
    assert [q.name.rsplit("/", 1)[1] for q in listed] == ["orders", "other"]
    client.delete_queue(name=queue.name)
    with pytest.raises(exceptions.NotFound):
        client.get_queue(name=queue.name)


def test_update_queue_with_a_field_mask(emu: Emulator, make_queue: Make) -> None:
    client = emu.tasks_client()
    queue = make_queue("limited", retry_config={"max_attempts": 7})
    updated = client.update_queue(
        queue={"name": queue.name, "rate_limits": {"max_dispatches_per_second": 20},
               "retry_config": {"max_attempts": 1}},
        update_mask=field_mask_pb2.FieldMask(paths=["rate_limits.max_dispatches_per_second"]))
    assert updated.rate_limits.max_dispatches_per_second == 20
    assert updated.retry_config.max_attempts == 7  # not in the mask: unchanged
    created = client.update_queue(queue={"name": f"{emu.location}/queues/made-by-update"})
    assert created.state == tasks_v2.Queue.State.RUNNING


@pytest.mark.parametrize(("queue", "code"), [
    ({"name": "projects/p/locations/l/queues/bad_name"}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"rate_limits": {"max_dispatches_per_second": 501}}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"rate_limits": {"max_concurrent_dispatches": 5001}}, grpc.StatusCode.INVALID_ARGUMENT),
])
def test_invalid_queues_are_refused(emu: Emulator, queue: dict[str, Any],
                                    code: grpc.StatusCode) -> None:
    body = {"name": f"{emu.location}/queues/q", **queue}
    with pytest.raises(exceptions.GoogleAPICallError) as info:
        emu.tasks_client().create_queue(parent=emu.location, queue=body)
    assert info.value.grpc_status_code == code


def test_existing_and_missing_queues(emu: Emulator, make_queue: Make) -> None:
    make_queue("twice")
    with pytest.raises(exceptions.AlreadyExists):
        make_queue("twice")
    with pytest.raises(exceptions.NotFound):
        emu.tasks_client().create_task(parent=f"{emu.location}/queues/missing",
                                       task=http_task("http://127.0.0.1:1/"))


# -- tasks ----------------------------------------------------------------------------------


def test_task_is_dispatched_with_the_platform_headers(emu: Emulator, make_queue: Make,
                                                      handler: Handler) -> None:
    queue = make_queue("headers")
    emu.tasks_client().create_task(parent=queue.name, task=http_task(
        f"{handler.url}/work?x=1", f"{queue.name}/tasks/job-1",
        http={"body": b'{"a": 1}', "headers": {"Content-Type": "application/json",
                                              "X-Custom": "yes"}}))
    [request] = handler.wait_for(1)
    assert request.path == "/work"
    assert request.method == "POST"
    assert request.body == b'{"a": 1}'
    h = request.headers
    assert h["user-agent"] == "Google-Cloud-Tasks"
    assert h["x-cloudtasks-queuename"] == "headers"
    assert h["x-cloudtasks-taskname"] == "job-1"
    assert h["x-cloudtasks-taskretrycount"] == "0"
    assert h["x-cloudtasks-taskexecutioncount"] == "0"
    assert abs(float(h["x-cloudtasks-tasketa"]) - time.time()) < 30
    assert h["x-custom"] == "yes"
    assert h["content-type"] == "application/json"
    assert "x-cloudtasks-taskpreviousresponse" not in h


def test_names_dedup_and_tombstones(manual_emu: Emulator, clock: ManualClock,
                                    make_manual_queue: Make, handler: Handler) -> None:
    client = manual_emu.tasks_client()
    queue = make_manual_queue("dedup", state=tasks_v2.Queue.State.PAUSED)
    client.pause_queue(name=queue.name)
    name = f"{queue.name}/tasks/once"
    client.create_task(parent=queue.name, task=http_task(handler.url, name))
    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue.name, task=http_task(handler.url, name))
    client.delete_task(name=name)
    with pytest.raises(exceptions.AlreadyExists):  # ended recently: still reserved
        client.create_task(parent=queue.name, task=http_task(handler.url, name))
    clock.advance(601)  # this emulator's tombstone window is 600 s
    client.create_task(parent=queue.name, task=http_task(handler.url, name))


def test_generated_names_and_views(emu: Emulator, make_queue: Make) -> None:
    client = emu.tasks_client()
    queue = make_queue("views")
    client.pause_queue(name=queue.name)
    task = client.create_task(parent=queue.name, task=http_task("http://127.0.0.1:1/x"))
    assert task.name.startswith(f"{queue.name}/tasks/")
    assert task.http_request.body == b""  # BASIC view omits the body
    full = client.get_task(request={"name": task.name, "response_view": "FULL"})
    assert full.http_request.body == b"{}"
    assert full.dispatch_deadline == timedelta(minutes=10)
    assert [t.name for t in client.list_tasks(parent=queue.name)] == [task.name]


@pytest.mark.parametrize(("task", "problem"), [
    ({"name": "projects/emulator/locations/local/queues/bad/tasks/x"}, "invalid task name"),
    ({"name": "{queue}/tasks/has space"}, "invalid task name"),
    ({"schedule_time": "31 days"}, "at most 30 days"),
    ({"dispatch_deadline": 10}, "outside 15s..30min"),
    ({"dispatch_deadline": 1801}, "outside 15s..30min"),
    ({"http": {"body": b"x" * (1024 * 1024 + 1)}}, "exceeds the 1 MB limit"),
    ({"http": {"url": "ftp://example.com"}}, r"must be an http\(s\) URL"),
    ({"http": {"http_method": "GET"}}, "body is allowed only with POST, PUT or PATCH"),
    ({"http": {"http_method": "DELETE"}}, "body is allowed only with POST, PUT or PATCH"),
])
def test_invalid_tasks_are_refused(emu: Emulator, make_queue: Make, task: dict[str, Any],
                                   problem: str) -> None:
    queue = make_queue("strict")
    body = http_task("http://127.0.0.1:1/", **{k: v for k, v in task.items() if k == "http"})
    if "name" in task:
        body["name"] = task["name"].format(queue=queue.name)
    if task.get("schedule_time") == "31 days":
        body["schedule_time"] = ts(time.time() + 31 * 86400)
    if "dispatch_deadline" in task:
        body["dispatch_deadline"] = seconds(task["dispatch_deadline"])
    with pytest.raises(exceptions.InvalidArgument, match=problem):
        emu.tasks_client().create_task(parent=queue.name, task=body)


def test_dispatch_waits_for_schedule_time(manual_emu: Emulator, clock: ManualClock,
                                          make_manual_queue: Make, handler: Handler) -> None:
    client = manual_emu.tasks_client()
    queue = make_manual_queue("later")
    client.create_task(parent=queue.name, task=http_task(
        f"{handler.url}/later", schedule_time=ts(clock.now() + 3600)))
    client.create_task(parent=queue.name, task=http_task(f"{handler.url}/now"))
    assert [r.path for r in handler.wait_for(1)] == ["/now"]
    manual_emu.wait_idle()  # the response is in: advancing the clock cannot time it out
    clock.advance(3599)
    client.create_task(parent=queue.name, task=http_task(f"{handler.url}/sentinel"))
    assert [r.path for r in handler.wait_for(2)] == ["/now", "/sentinel"]
    clock.advance(1)
    assert [r.path for r in handler.wait_for(3)] == ["/now", "/sentinel", "/later"]


def test_retries_follow_the_queue_retry_config(manual_emu: Emulator, clock: ManualClock,
                                              make_manual_queue: Make, handler: Handler) -> None:
    client = manual_emu.tasks_client()
    queue = make_manual_queue("retrying", retry_config={
        "max_attempts": 4, "min_backoff": seconds(10), "max_backoff": seconds(25),
        "max_doublings": 1})
    handler.default = 503
    name = f"{queue.name}/tasks/flaky"
    client.create_task(parent=queue.name, task=http_task(f"{handler.url}/flaky", name))
    handler.wait_for(1)
    expected_delays = [10, 20, 25]  # doubling once, then linear (+20), capped at max_backoff
    for attempt, delay in enumerate(expected_delays, start=2):
        _wait_task(client, name, lambda t, n=attempt: t.dispatch_count == n - 1)
        manual_emu.wait_idle()
        # Read once the answer is recorded: the count goes up when the attempt starts, the
        # schedule time once its 503 is in.
        task = client.get_task(name=name)
        assert task.schedule_time.timestamp() == pytest.approx(clock.now() + delay, abs=1e-3)
        clock.advance(delay)
        retry = handler.wait_for(attempt)[-1].headers
        assert retry["x-cloudtasks-taskretrycount"] == str(attempt - 1)
        assert retry["x-cloudtasks-taskexecutioncount"] == "0"  # 5xx answers are not counted
        assert retry["x-cloudtasks-taskpreviousresponse"] == "503"
        assert "503" in retry["x-cloudtasks-taskretryreason"]
    # The fourth attempt was the last: the task is gone, and its name reserved.
    _wait_gone(client, name)
    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue.name, task=http_task(handler.url, name))


def test_only_2xx_is_success(emu: Emulator, make_queue: Make, handler: Handler) -> None:
    client = emu.tasks_client()
    queue = make_queue("statuses", retry_config={"min_backoff": seconds(0.1),
                                                 "max_backoff": seconds(0.1)})
    handler.statuses = [302, 404, 429, 500, 204]
    name = f"{queue.name}/tasks/statuses"
    client.create_task(parent=queue.name, task=http_task(handler.url, name))
    handler.wait_for(5)
    _wait_gone(client, name)
    assert len(handler.received) == 5


def test_dispatch_deadline_cancels_a_slow_request(manual_emu: Emulator, clock: ManualClock,
                                                  make_manual_queue: Make,
                                                  handler: Handler) -> None:
    client = manual_emu.tasks_client()
    queue = make_manual_queue("deadline")
    name = f"{queue.name}/tasks/slow"
    manual_emu.faults.fail_dispatch(f"{handler.url}/slow", hang=True, times=1)
    client.create_task(parent=queue.name, task=http_task(
        f"{handler.url}/slow", name, dispatch_deadline=seconds(15)))
    _wait_task(client, name, lambda t: t.schedule_time.timestamp() <= clock.now())
    clock.advance(15)  # the deadline passes on the emulator's clock
    task = _wait_task(client, name, lambda t: t.dispatch_count == 1)
    assert task.response_count == 0
    assert "DEADLINE_EXCEEDED" in task.last_attempt.response_status.message
    clock.advance(1)  # past the 0.1 s backoff: the retry gets through
    handler.wait_for(1)
    _wait_gone(client, name)


def test_rate_limit_and_concurrency(manual_emu: Emulator, clock: ManualClock,
                                    make_manual_queue: Make, handler: Handler) -> None:
    client = manual_emu.tasks_client()
    queue = make_manual_queue("rated", rate_limits={"max_dispatches_per_second": 1})
    assert queue.rate_limits.max_burst_size == 1
    other = make_manual_queue("sentinels")
    for i in range(3):
        client.create_task(parent=queue.name, task=http_task(f"{handler.url}/rated{i}"))
    handler.wait_for(1)
    client.create_task(parent=other.name, task=http_task(f"{handler.url}/sentinel"))
    handler.wait_for(2)
    assert sum(r.path.startswith("/rated") for r in handler.received) == 1  # no token left
    clock.advance(1)  # one token at 1/s
    handler.wait_for(3)
    clock.advance(1)
    handler.wait_for(4)
    assert sum(r.path.startswith("/rated") for r in handler.received) == 3


def test_max_concurrent_dispatches(emu: Emulator, make_queue: Make, handler: Handler) -> None:
    client = emu.tasks_client()
    queue = make_queue("one-at-a-time", rate_limits={"max_concurrent_dispatches": 1})
    handler.delays["/slow"] = 0.05
    for _ in range(4):
        client.create_task(parent=queue.name, task=http_task(f"{handler.url}/slow"))
    handler.wait_for(4)
    assert handler.max_in_flight == 1


def test_slow_queue_never_blocks_another(emu: Emulator, make_queue: Make,
                                         handler: Handler) -> None:
    client = emu.tasks_client()
    slow, fast = make_queue("slow"), make_queue("fast")
    handler.delays["/slow"] = 5.0
    for _ in range(3):
        client.create_task(parent=slow.name, task=http_task(f"{handler.url}/slow"))
    started = time.monotonic()
    client.create_task(parent=fast.name, task=http_task(f"{handler.url}/fast"))
    [request] = handler.wait_for(1, timeout=4)
    assert request.path == "/fast"
    assert time.monotonic() - started < 4


def test_paused_queue_holds_tasks_and_purge_removes_them(emu: Emulator, make_queue: Make,
                                                          handler: Handler) -> None:
    client = emu.tasks_client()
    held, other = make_queue("held"), make_queue("other")
    client.pause_queue(name=held.name)
    for _ in range(2):
        client.create_task(parent=held.name, task=http_task(f"{handler.url}/held"))
    client.create_task(parent=other.name, task=http_task(f"{handler.url}/sentinel"))
    assert [r.path for r in handler.wait_for(1)] == ["/sentinel"]
    assert client.get_queue(name=held.name).state == tasks_v2.Queue.State.PAUSED
    client.resume_queue(name=held.name)
    assert [r.path for r in handler.wait_for(3)][1:] == ["/held", "/held"]
    client.pause_queue(name=held.name)
    client.create_task(parent=held.name, task=http_task(f"{handler.url}/purged"))
    purged = client.purge_queue(name=held.name)
    assert purged.purge_time.timestamp() > 0
    assert list(client.list_tasks(parent=held.name)) == []
    client.resume_queue(name=held.name)
    client.create_task(parent=other.name, task=http_task(f"{handler.url}/sentinel"))
    assert [r.path for r in handler.wait_for(4)][-1] == "/sentinel"


def test_run_task_dispatches_now(manual_emu: Emulator, clock: ManualClock,
                                 make_manual_queue: Make, handler: Handler) -> None:
    client = manual_emu.tasks_client()
    queue = make_manual_queue("run")
    task = client.create_task(parent=queue.name, task=http_task(
        f"{handler.url}/forced", schedule_time=ts(clock.now() + 86400)))
    client.run_task(name=task.name)
    assert [r.path for r in handler.wait_for(1)] == ["/forced"]
    _wait_gone(client, task.name)
    with pytest.raises(exceptions.NotFound):
        client.run_task(name=task.name)


def test_oidc_token_verifies_with_google_auth(emu: Emulator, make_queue: Make,
                                              handler: Handler) -> None:
    import google.auth.transport.requests
    import requests
    from google.oauth2 import id_token

    queue = make_queue("oidc")
    email = "tasks@my-project.iam.gserviceaccount.com"
    client = emu.tasks_client()
    client.create_task(parent=queue.name, task=http_task(
        f"{handler.url}/default-aud", http={"oidc_token": {"service_account_email": email}}))
    client.create_task(parent=queue.name, task=http_task(
        f"{handler.url}/custom-aud", http={"oidc_token": {"service_account_email": email,
                                                         "audience": "https://svc.example"}}))
    received = {r.path: r for r in handler.wait_for(2)}
    with requests.Session() as session:
        transport = google.auth.transport.requests.Request(session=session)
        for path, audience in [("/default-aud", f"{handler.url}/default-aud"),
                               ("/custom-aud", "https://svc.example")]:
            token = received[path].headers["authorization"].removeprefix("Bearer ")
            claims = id_token.verify_token(token, transport, audience=audience,
                                           certs_url=emu.certs_url)
            assert claims["email"] == email
            assert claims["email_verified"] is True
            assert claims["iss"] == "https://accounts.google.com"


def test_batch_create_reports_each_failure_by_index(emu: Emulator, make_queue: Make,
                                                   handler: Handler) -> None:
    client = emu.tasks_client()
    queue = make_queue("batch")
    client.create_task(parent=queue.name, task=http_task(handler.url, f"{queue.name}/tasks/t1"))
    requests = [tasks_v2.CreateTaskRequest(parent=queue.name, task=http_task(
        f"{handler.url}/b", f"{queue.name}/tasks/t{i}")) for i in range(4)]
    requests[2].task.dispatch_deadline = seconds(5)
    operation = client.batch_create_tasks(parent=queue.name, requests=requests)
    response = operation.result(timeout=10)
    assert [t.name.rsplit("/", 1)[1] for t in response.tasks] == ["t0", "t3"]
    assert all(t.http_request.body == b"" for t in response.tasks)  # BASIC view
    metadata = operation.metadata
    assert metadata.state == tasks_v2.BatchCreateTasksMetadata.State.PARTIALLY_SUCCEEDED
    failed = {i: status.code for i, status in metadata.failed_requests.items()}
    assert failed == {1: grpc.StatusCode.ALREADY_EXISTS.value[0],
                      2: grpc.StatusCode.INVALID_ARGUMENT.value[0]}
    assert "15s..30min" in metadata.failed_requests[2].message
    # The operation can be read back, as clients do while polling a running one.
    again = client._transport.operations_client.get_operation(operation.operation.name)
    assert again.done
    assert again.name == operation.operation.name
    assert {r.path for r in handler.wait_for(3)} == {"/", "/b"}


def test_batch_create_limits_and_request_ids(emu: Emulator, make_queue: Make) -> None:
    client = emu.tasks_client()
    queue, other = make_queue("limits"), make_queue("elsewhere")
    client.pause_queue(name=queue.name)

    def batch(count: int, parent: str = queue.name, **fields: Any) -> Any:
        return tasks_v2.BatchCreateTasksRequest(parent=queue.name, requests=[
            tasks_v2.CreateTaskRequest(parent=parent, task=http_task("http://127.0.0.1:1/"))
            for _ in range(count)], **fields)

    with pytest.raises(exceptions.InvalidArgument, match=r"1\.\.100"):
        client.batch_create_tasks(request=batch(101))
    with pytest.raises(exceptions.InvalidArgument, match="must name the batch's parent"):
        client.batch_create_tasks(request=batch(2, parent=other.name))
    with pytest.raises(exceptions.NotFound):
        client.batch_create_tasks(request=tasks_v2.BatchCreateTasksRequest(
            parent=f"{emu.location}/queues/missing", requests=[]))
    # A retried batch (same request_id) answers its first operation and creates nothing more.
    emu.faults.fail_rpc("BatchCreateTasks", grpc.StatusCode.DEADLINE_EXCEEDED, after=True)
    with pytest.raises(exceptions.DeadlineExceeded):
        client.batch_create_tasks(request=batch(3, request_id="r-1"), retry=None)
    first = client.batch_create_tasks(request=batch(3, request_id="r-1")).result(timeout=10)
    assert len(first.tasks) == 3
    assert len(list(client.list_tasks(parent=queue.name))) == 3


async def test_async_batch_create(emu: Emulator, handler: Handler) -> None:
    client = emu.async_tasks_client()
    queue = await client.create_queue(parent=emu.location,
                                      queue={"name": f"{emu.location}/queues/abatch"})
    operation = await client.batch_create_tasks(parent=queue.name, requests=[
        tasks_v2.CreateTaskRequest(parent=queue.name, task=http_task(f"{handler.url}/{i}"))
        for i in range(3)])
    response = await operation.result()
    assert len(response.tasks) == 3
    assert {r.path for r in await asyncio.to_thread(handler.wait_for, 3)} == {"/0", "/1", "/2"}


async def test_async_client(emu: Emulator, handler: Handler) -> None:
    client = emu.async_tasks_client()
    queue = await client.create_queue(parent=emu.location,
                                      queue={"name": f"{emu.location}/queues/async"})
    await client.create_task(parent=queue.name, task=http_task(f"{handler.url}/async"))
    pager = await client.list_queues(parent=emu.location)
    assert [q.name async for q in pager] == [queue.name]
    [request] = handler.wait_for(1)
    assert request.path == "/async"


def test_fault_injection_before_and_after(emu: Emulator, make_queue: Make) -> None:
    client = emu.tasks_client()
    queue = make_queue("faulty")
    client.pause_queue(name=queue.name)
    emu.faults.fail_rpc("CreateTask", grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(exceptions.ServiceUnavailable):
        client.create_task(parent=queue.name, task=http_task("http://127.0.0.1:1/",
                                                             f"{queue.name}/tasks/before"),
                           retry=None)
    assert list(client.list_tasks(parent=queue.name)) == []
    emu.faults.fail_rpc("CreateTask", grpc.StatusCode.DEADLINE_EXCEEDED, after=True)
    with pytest.raises(exceptions.DeadlineExceeded):
        client.create_task(parent=queue.name, task=http_task("http://127.0.0.1:1/",
                                                             f"{queue.name}/tasks/after"),
                           retry=None)
    # The nasty case: the client saw an error, but the task exists.
    assert client.get_task(name=f"{queue.name}/tasks/after").name.endswith("/after")


def test_status_view_and_dispatch_log(emu: Emulator, make_queue: Make,
                                      handler: Handler) -> None:
    import httpx

    queue = make_queue("viewed")
    emu.tasks_client().create_task(parent=queue.name, task=http_task(handler.url,
                                                                     f"{queue.name}/tasks/t1"))
    handler.wait_for(1)
    deadline = time.monotonic() + 10
    while True:
        status = httpx.get(f"{emu.http_url}/status").json()
        if status["recentDispatches"] or time.monotonic() > deadline:
            break
    [entry] = status["recentDispatches"]
    assert entry["queue"] == "viewed"
    assert entry["task"] == "t1"
    assert entry["status"] == 200
    assert [q["name"] for q in status["queues"]] == [queue.name]


def _wait_task(client: Any, name: str, condition: Callable[[Any], bool],
               timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        task = client.get_task(name=name)
        if condition(task):
            return task
        assert time.monotonic() < deadline, f"task {name} never reached the condition: {task}"


def _wait_gone(client: Any, name: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.get_task(name=name)
        except exceptions.NotFound:
            return
        assert time.monotonic() < deadline, f"task {name} still exists"


def test_schedule_time_is_returned(emu: Emulator, make_queue: Make) -> None:
    client = emu.tasks_client()
    queue = make_queue("sched")
    client.pause_queue(name=queue.name)
    when = time.time() + 86400.5
    task = client.create_task(parent=queue.name,
                              task=http_task("http://127.0.0.1:1/", schedule_time=ts(when)))
    assert task.schedule_time.timestamp() == pytest.approx(when, abs=1e-3)


def test_missing_tasks_are_not_found(emu: Emulator, make_queue: Make) -> None:
    client = emu.tasks_client()
    queue = make_queue("empty")
    for call in (client.get_task, client.delete_task, client.run_task):
        with pytest.raises(exceptions.NotFound):
            call(name=f"{queue.name}/tasks/missing")


def test_injected_dispatch_failures_are_retried(emu: Emulator, make_queue: Make,
                                                handler: Handler) -> None:
    client = emu.tasks_client()
    queue = make_queue("injected", retry_config={"min_backoff": seconds(0.05),
                                                 "max_backoff": seconds(0.05)})
    emu.faults.fail_dispatch(f"{handler.url}/flaky", status=503, times=2)
    name = f"{queue.name}/tasks/flaky"
    client.create_task(parent=queue.name, task=http_task(f"{handler.url}/flaky", name))
    [request] = handler.wait_for(1)  # the two injected 503s never reached the handler
    assert request.headers["x-cloudtasks-taskretrycount"] == "2"
    assert request.headers["x-cloudtasks-taskpreviousresponse"] == "503"
    _wait_gone(client, name)


def test_clients_find_the_emulator_through_the_environment(
        emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from celery_gcp.emulator import scheduler_client, tasks_client

    for variable, value in emu.environ().items():
        monkeypatch.setenv(variable, value)
    queue = tasks_client().create_queue(parent=emu.location,
                                        queue={"name": f"{emu.location}/queues/env"})
    assert queue.name.endswith("/env")
    assert list(scheduler_client().list_jobs(parent=emu.location)) == []
    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST")
    with pytest.raises(ValueError, match="CLOUD_TASKS_EMULATOR_HOST"):
        tasks_client()
