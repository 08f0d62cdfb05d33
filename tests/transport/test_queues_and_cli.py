"""Queue configuration as code (plan/sync) and the transport's CLI commands, on the emulator."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
from click.testing import CliRunner

from celery_gcp import Celery, gcp
from celery_gcp import queues as queue_config
from celery_gcp.cli import main
from celery_gcp.exceptions import ImproperlyConfigured

from .conftest import Ran, Stack


def rate_limited(app: Celery, ran: Ran) -> None:
    @app.task(name="proj.report", rate_limit="120/m", queue="reports")
    def report() -> None: ...

    @app.task(name="proj.ping")
    def ping(n: int) -> int:
        ran.record("ping", n)
        return n


def test_plan_then_sync_creates_and_updates_with_a_field_mask(stack_factory: Any) -> None:
    stack: Stack = stack_factory(rate_limited, gcp_queues={
        "emails": {"rate_limit": "10/s", "max_attempts": 5, "min_backoff": 0.5}})
    transport = stack.app.transport
    specs = queue_config.desired(stack.app, partial(gcp.queue_path, stack.app))
    changes = {c.spec.name: c for c in queue_config.plan(
        specs, transport.get_queue)}  # type: ignore[attr-defined]
    assert changes["emails"].action == "create"
    assert changes["reports"].action == "create"
    assert ("max_dispatches_per_second", None, 2.0) in changes["reports"].fields
    assert changes["celery"].action == "keep"
    queue_config.apply(list(changes.values()), transport.client())  # type: ignore[attr-defined]
    client = stack.emu.tasks_client()
    emails = client.get_queue(name="projects/p/locations/l/queues/emails")
    assert emails.rate_limits.max_dispatches_per_second == 10
    assert emails.retry_config.max_attempts == 5
    assert emails.retry_config.min_backoff.total_seconds() == 0.5
    again = queue_config.plan(specs, transport.get_queue)  # type: ignore[attr-defined]
    assert {c.action for c in again} == {"keep"}  # a second sync changes nothing
    stack.app.conf.gcp_queues = {"emails": {"rate_limit": "20/s", "max_attempts": 5,
                                            "min_backoff": 0.5}}
    [update] = [c for c in queue_config.plan(
        queue_config.desired(stack.app, partial(gcp.queue_path, stack.app)), transport.get_queue)
        if c.action == "update"]  # type: ignore[attr-defined]
    assert update.fields == [("max_dispatches_per_second", 10.0, 20.0)]
    queue_config.apply([update], transport.client())  # type: ignore[attr-defined]
    emails = client.get_queue(name="projects/p/locations/l/queues/emails")
    assert emails.rate_limits.max_dispatches_per_second == 20
    assert emails.retry_config.max_attempts == 5  # untouched by the masked update


def test_conflicting_rate_limits_on_one_queue_are_refused() -> None:
    app = Celery("proj")

    @app.task(rate_limit="1/s")
    def a() -> None: ...

    @app.task(rate_limit="2/s")
    def b() -> None: ...

    with pytest.raises(ImproperlyConfigured, match="different rate limits"):
        queue_config.desired(app, lambda name: name)
    assert queue_config.parse_rate("3600/h") == 1.0
    with pytest.raises(ImproperlyConfigured, match="N/s"):
        queue_config.parse_rate("fast")


def test_cli_queues_call_inspect_and_purge(stack_factory: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    stack: Stack = stack_factory(rate_limited)
    import sys
    import types

    module = types.ModuleType("cli_bench_app")
    module.app = stack.app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cli_bench_app", module)
    runner = CliRunner()
    plan = runner.invoke(main, ["-A", "cli_bench_app", "queues", "plan"])
    assert plan.exit_code == 0, plan.output
    assert "create" in plan.output
    assert "queues/reports" in plan.output
    sync = runner.invoke(main, ["-A", "cli_bench_app", "queues", "sync"])
    assert sync.exit_code == 0, sync.output
    shown = runner.invoke(main, ["-A", "cli_bench_app", "inspect", "queues"])
    assert "reports\tprojects/p/locations/l/queues/reports\tRUNNING\t2/s" in shown.output
    called = runner.invoke(main, ["-A", "cli_bench_app", "call", "proj.ping",
                                  "--args", json.dumps([7])])
    assert called.exit_code == 0, called.output
    assert stack.ran.wait_for(1)[0] == ("ping", 7)
    bad = runner.invoke(main, ["-A", "cli_bench_app", "call", "proj.ping", "--args", "{"])
    assert bad.exit_code == 2
    stack.emu.tasks_client().pause_queue(name="projects/p/locations/l/queues/celery")
    runner.invoke(main, ["-A", "cli_bench_app", "call", "proj.ping", "--args", "[8]"])
    purged = runner.invoke(main, ["-A", "cli_bench_app", "purge", "celery", "--yes"])
    assert purged.exit_code == 0, purged.output
    assert list(stack.emu.tasks_client().list_tasks(
        parent="projects/p/locations/l/queues/celery")) == []
