"""Cloud Tasks queues' and tasks' fields and limits, point by point against the field comments
of tasks_v2 (Queue, RetryConfig, RateLimits, Task, ListQueues, ListTasks), through the
official sync and async clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.protobuf import field_mask_pb2, timestamp_pb2

from celery_gcp.emulator import Emulator, ManualClock
from celery_gcp.emulator.queue_config import retry_delay

from .conftest import Handler

Make = Callable[..., Any]


def task(url: str, **fields: Any) -> dict[str, Any]:
    return {"http_request": {"url": url, **fields.pop("request", {})}, **fields}


# -- 11, 12: stored as the service stores them -----------------------------------------------


def test_max_retry_duration_is_truncated_to_seconds_and_burst_follows_the_rate(
        emu: Emulator, make_queue: Make) -> None:
    queue = make_queue("trunc", retry_config={"max_retry_duration": {"seconds": 10,
                                                                     "nanos": 700_000_000}},
                       rate_limits={"max_dispatches_per_second": 10})
    assert queue.retry_config.max_retry_duration.total_seconds() == 10
    # "generally at least equal to max_dispatches_per_second"
    assert queue.rate_limits.max_burst_size == 10


def test_a_resumed_queue_ramps_up_from_a_tenth_of_its_burst(
        manual_emu: Emulator, make_manual_queue: Make, clock: ManualClock,
        handler: Handler) -> None:
    # "dispatches ramp up slowly when ... the queue being unpaused" (HttpRequest): a full
    # bucket of 20 would send all 20 tasks the instant the queue is resumed.
    queue = make_manual_queue("ramp", rate_limits={"max_dispatches_per_second": 20}).name
    client = manual_emu.tasks_client()
    client.pause_queue(name=queue)
    for _ in range(20):
        client.create_task(parent=queue, task=task(f"{handler.url}/r"))
    clock.advance(60)  # paused a minute: the bucket does not fill while paused
    client.resume_queue(name=queue)
    handler.wait_for(2)
    # The rest wait for the clock (wait_idle counts rate-limited tasks as busy): once the two
    # answers are in, nothing else can have been sent.
    left = lambda: len(list(client.list_tasks(parent=queue)))  # noqa: E731
    deadline = time.monotonic() + 10
    while left() > 18 and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a condition, bounded by the deadline
    assert len(handler.received) == 2
    clock.advance(0.05)  # one token at 20/s
    handler.wait_for(3)
    assert left() >= 17


# -- 13: UpdateQueue masks ---------------------------------------------------------------------


def test_update_queue_with_an_empty_mask_updates_every_settable_field(
        emu: Emulator, make_queue: Make) -> None:
    queue = make_queue("upd", http_target={"http_method": tasks_v2.HttpMethod.PUT},
                       stackdriver_logging_config={"sampling_ratio": 0.5})
    client = emu.tasks_client()
    updated = client.update_queue(queue={
        "name": queue.name, "rate_limits": {"max_dispatches_per_second": 7},
        "http_target": {"http_method": tasks_v2.HttpMethod.PATCH},
        "stackdriver_logging_config": {"sampling_ratio": 0.25}})
    assert updated.rate_limits.max_dispatches_per_second == 7
    assert updated.http_target.http_method == tasks_v2.HttpMethod.PATCH
    assert updated.stackdriver_logging_config.sampling_ratio == 0.25
    assert updated.state == tasks_v2.Queue.State.RUNNING  # output only: kept


def test_a_mask_naming_an_output_only_field_ignores_it(emu: Emulator, make_queue: Make) -> None:
    queue = make_queue("outonly")
    updated = emu.tasks_client().update_queue(
        queue={"name": queue.name, "state": tasks_v2.Queue.State.PAUSED,
               "rate_limits": {"max_dispatches_per_second": 3}},
        update_mask=field_mask_pb2.FieldMask(paths=["state", "rate_limits"]))
    assert updated.state == tasks_v2.Queue.State.RUNNING
    assert updated.rate_limits.max_dispatches_per_second == 3


# -- 14: ListQueues filter ---------------------------------------------------------------------


def test_list_queues_filters_by_state(emu: Emulator, make_queue: Make) -> None:
    client = emu.tasks_client()
    make_queue("running")
    paused = make_queue("paused")
    client.pause_queue(name=paused.name)
    found = [q.name for q in client.list_queues(
        request={"parent": emu.location, "filter": "state: PAUSED"})]
    assert found == [paused.name]

    async def listed() -> list[str]:
        pager = await emu.async_tasks_client().list_queues(
            request={"parent": emu.location, "filter": "state = RUNNING"})
        return [q.name async for q in pager]

    assert [n.rsplit("/", 1)[1] for n in asyncio.run(listed())] == ["running"]
    with pytest.raises(exceptions.InvalidArgument, match="by state only"):
        list(client.list_queues(request={"parent": emu.location, "filter": "name: x"}))


# -- 16, 17: a task's fields -------------------------------------------------------------------


def test_a_past_schedule_time_becomes_now_and_times_are_truncated(
        manual_emu: Emulator, make_manual_queue: Make, clock: ManualClock,
        handler: Handler) -> None:
    queue = make_manual_queue("times").name
    manual_emu.faults.fail_dispatch(handler.url, hang=True, times=1)
    past = timestamp_pb2.Timestamp(seconds=int(clock.now()) - 3600, nanos=123_456_789)
    created = manual_emu.tasks_client().create_task(parent=queue, task=task(
        f"{handler.url}/x", schedule_time=past))
    assert created.schedule_time.timestamp() == pytest.approx(clock.now(), abs=1e-3)
    assert created.schedule_time.nanosecond % 1000 == 0  # to the microsecond
    assert created.create_time.nanosecond == 0  # to the second
    assert created.http_request.http_method == tasks_v2.HttpMethod.POST


def test_dispatch_count_counts_an_attempt_in_flight_and_run_task_dispatches_it_again(
        manual_emu: Emulator, make_manual_queue: Make, clock: ManualClock,
        handler: Handler) -> None:
    queue = make_manual_queue("inflight").name
    client = manual_emu.tasks_client()
    manual_emu.faults.fail_dispatch(handler.url, hang=True, times=1)
    created = client.create_task(parent=queue, task=task(f"{handler.url}/x"))
    # The attempt hangs: it is in flight (polled until dispatched, bounded).
    deadline = time.monotonic() + 10
    in_flight = client.get_task(name=created.name)
    while not in_flight.dispatch_count and time.monotonic() < deadline:
        in_flight = client.get_task(name=created.name)
    assert in_flight.dispatch_count == 1
    assert in_flight.response_count == 0
    # RunTask dispatches it again while the first attempt is on its way, and says so.
    ran = client.run_task(name=created.name)
    assert ran.dispatch_count == 2
    handler.wait_for(1)
    # The second attempt's 200 ends the task; wait for it (bounded) before moving the clock,
    # or its answer could land after its own deadline.
    deadline = time.monotonic() + 10
    gone = False
    while not gone and time.monotonic() < deadline:
        try:
            client.get_task(name=created.name)
        except exceptions.NotFound:
            gone = True
    assert gone
    clock.advance(601)  # the hung first attempt meets its deadline
    manual_emu.wait_idle()


def test_first_attempt_keeps_only_its_dispatch_time(
        manual_emu: Emulator, make_manual_queue: Make, clock: ManualClock,
        handler: Handler) -> None:
    handler.statuses = [503]
    queue = make_manual_queue("first", retry_config={"min_backoff": {"seconds": 60}}).name
    client = manual_emu.tasks_client()
    created = client.create_task(parent=queue, task=task(f"{handler.url}/x"))
    handler.wait_for(1)
    manual_emu.wait_idle()
    got = client.get_task(request={"name": created.name,
                                   "response_view": tasks_v2.Task.View.FULL})
    first = got.first_attempt
    assert first.dispatch_time.timestamp() > 0
    assert not first.response_status.message
    assert got.last_attempt.response_status.message == "HTTP 503"


# -- 19: limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "match"), [
    ({"request": {"url": "http://h/" + "a" * 2100}}, "at most 2083"),
    ({"request": {"url": "http://h/x", "headers": {"X-Big": "v" * 82000}}}, "under 81920"),
    ({"request": {"url": "http://h/x", "headers": {"X-Bad": "a\r\nInjected: 1"}}}, "CR, LF"),
    ({"request": {"url": "http://h/x", "headers": {"Bad Name": "v"}}}, "header name"),
    ({"schedule_time": {"seconds": -62135596801}}, "years 1 and 9999"),
], ids=["url-length", "header-size", "header-crlf", "header-name", "before-year-1"])
def test_tasks_the_service_refuses_are_refused_at_create(
        emu: Emulator, make_queue: Make, fields: dict[str, Any], match: str) -> None:
    queue = make_queue("limits").name
    with pytest.raises(exceptions.InvalidArgument, match=match):
        emu.tasks_client().create_task(parent=queue, task=task("http://h/x", **fields)
                                       if "request" not in fields else
                                       {"http_request": fields["request"]})


def test_list_tasks_page_size_and_tokens_are_checked(emu: Emulator, make_queue: Make) -> None:
    queue = make_queue("pages").name
    client = emu.tasks_client()
    with pytest.raises(exceptions.InvalidArgument, match="page_size"):
        client.list_tasks(request={"parent": queue, "page_size": 1001})
    with pytest.raises(exceptions.InvalidArgument, match="page_token"):
        client.list_tasks(request={"parent": queue, "page_token": "²"})


# -- 33: retries that never stop ---------------------------------------------------------------


def test_retry_delays_do_not_overflow_and_negative_backoff_is_refused(
        emu: Emulator, make_queue: Make) -> None:
    config = tasks_v2.RetryConfig.pb()(max_doublings=2000)
    config.max_backoff.FromSeconds(3600)
    assert retry_delay(config, 1025) == 0.0  # zero backoff: zero, not an overflow
    config.min_backoff.FromSeconds(1)
    assert retry_delay(config, 5000) == 3600.0
    with pytest.raises(exceptions.InvalidArgument, match="must not be negative"):
        make_queue("negative", retry_config={"min_backoff": {"seconds": -1}})


# -- 10: a task's own retry_config -------------------------------------------------------------


def test_a_tasks_retry_config_overrides_its_queues(
        manual_emu: Emulator, make_manual_queue: Make, clock: ManualClock,
        handler: Handler) -> None:
    handler.default = 503
    queue = make_manual_queue("ownretry", retry_config={
        "max_attempts": 10, "min_backoff": {"seconds": 100}, "max_backoff": {"seconds": 100}}).name
    client = manual_emu.tasks_client()
    created = client.create_task(parent=queue, task={
        "http_request": {"url": f"{handler.url}/x"},
        "retry_config": {"max_attempts": 2, "min_backoff": {"seconds": 5},
                         "max_backoff": {"seconds": 5}}})
    handler.wait_for(1)
    manual_emu.wait_idle()
    waiting = client.get_task(name=created.name)
    assert waiting.schedule_time.timestamp() == pytest.approx(clock.now() + 5, abs=1e-3)
    clock.advance(5)
    handler.wait_for(2)
    manual_emu.wait_idle()
    with pytest.raises(exceptions.NotFound):  # its own max_attempts: 2
        client.get_task(name=created.name)


# -- 20: BatchDeleteTasks, IAM, locations ------------------------------------------------------


def test_batch_delete_tasks_deletes_and_reports_each_failure(
        emu: Emulator, make_queue: Make) -> None:
    queue = make_queue("bdel").name
    client = emu.tasks_client()
    client.pause_queue(name=queue)
    made = [client.create_task(parent=queue, task=task("http://127.0.0.1:9/x")).name
            for _ in range(3)]
    operation = client.batch_delete_tasks(parent=queue, names=[*made[:2], f"{queue}/tasks/no"])
    operation.result(timeout=10)
    assert operation.metadata.state == tasks_v2.BatchDeleteTasksMetadata.State.PARTIALLY_SUCCEEDED
    assert list(operation.metadata.failed_requests) == [2]
    assert [t.name for t in client.list_tasks(parent=queue)] == [made[2]]


def test_iam_policies_are_stored_per_queue(emu: Emulator, make_queue: Make) -> None:
    from google.iam.v1 import policy_pb2

    queue = make_queue("iam").name
    client = emu.tasks_client()
    assert not client.get_iam_policy(resource=queue).bindings
    binding = policy_pb2.Binding(role="roles/cloudtasks.enqueuer",
                                 members=["serviceAccount:a@p.iam.gserviceaccount.com"])
    client.set_iam_policy(request={"resource": queue,
                                   "policy": policy_pb2.Policy(bindings=[binding])})
    assert list(client.get_iam_policy(resource=queue).bindings) == [binding]
    held = client.test_iam_permissions(resource=queue, permissions=["cloudtasks.tasks.create"])
    assert list(held.permissions) == ["cloudtasks.tasks.create"]


def test_locations_in_use_are_listed_by_both_clients(emu: Emulator, make_queue: Make) -> None:
    from google.cloud.location import locations_pb2

    make_queue("here")
    project = emu.location.rsplit("/locations/", 1)[0]
    listed = emu.tasks_client().list_locations(locations_pb2.ListLocationsRequest(name=project))
    assert [loc.name for loc in listed.locations] == [emu.location]
    got = emu.scheduler_client().get_location(
        locations_pb2.GetLocationRequest(name=emu.location))
    assert got.location_id == emu.location.rsplit("/", 1)[1]


# -- 34: a request that does not parse ---------------------------------------------------------


def test_an_unparsable_request_is_invalid_argument(emu: Emulator) -> None:
    import grpc

    with grpc.insecure_channel(emu.address) as channel:
        call = channel.unary_unary("/google.cloud.tasks.v2.CloudTasks/GetQueue",
                                   request_serializer=lambda raw: raw,
                                   response_deserializer=lambda raw: raw)
        with pytest.raises(grpc.RpcError) as raised:
            call(b"\xff\xff\xff", timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
