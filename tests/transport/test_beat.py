"""Periodic tasks: beat_schedule -> Cloud Scheduler jobs (emulator) -> beat endpoint -> task."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import httpx
import pytest
from click.testing import CliRunner
from google.cloud import scheduler_v1

from celery_gcp import Celery, Task, beat
from celery_gcp.cli import main
from celery_gcp.exceptions import ScheduleError
from celery_gcp.schedules import crontab, schedule, solar

from .conftest import Ran, Stack

JOBS = "projects/p/locations/l/jobs"


def tasks(app: Celery, ran: Ran) -> None:
    @app.task(name="proj.tick", bind=True)
    def tick(self: Task[Any, Any], label: str = "tick") -> None:
        ran.record("tick", {"label": label, "id": self.request.id,
                            "at": datetime.fromtimestamp(app.now().timestamp(), UTC)})


def new_app(**settings: Any) -> Celery:
    app = Celery("proj", gcp_project="p", gcp_location="l", task_base_url="http://127.0.0.1:9",
                 **settings)
    tasks(app, Ran())
    return app


def jobs(stack: Stack) -> dict[str, Any]:
    client = stack.emu.scheduler_client()
    return {j.name.rsplit("/", 1)[1]: j for j in client.list_jobs(parent=JOBS.rsplit("/", 1)[0])}


# -- entries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "problem"), [
    ({"task": "proj.nope", "schedule": 60}, "'proj.nope' is not registered"),
    ({"task": "proj.tick", "schedule": 60, "args": (object(),)}, "must be plain JSON"),
    ({"task": "proj.tick", "schedule": 60, "kwargs": {"label": 3}}, "label"),
    ({"task": "proj.tick", "schedule": 90.5}, "whole number of seconds"),
    ({"task": "proj.tick", "schedule": 0.5}, "at least 1 second"),
    ({"task": "proj.tick", "schedule": solar("sunrise", 48.85, 2.35)}, "solar"),
    ({"task": "proj.tick", "schedule": 60, "job": {"retry_count": 6}}, r"retry_count=6 .*0\.\.5"),
    ({"task": "proj.tick", "schedule": 60, "job": {"attempt_deadline": 10}}, "15..1800"),
    ({"task": "proj.tick", "schedule": 60, "job": {"retries": 1}}, "unknown job settings"),
    ({"task": "proj.tick", "schedule": 60, "every": 1}, "unknown keys"),
    ({"task": "proj.tick"}, "no 'schedule'"),
])
def test_entries_that_cannot_run_say_why(entry: dict[str, Any], problem: str) -> None:
    app = new_app(beat_schedule={"bad one": entry})
    with pytest.raises(ScheduleError, match=problem) as info:
        beat.entries(app)
    assert "beat_schedule['bad one']" in str(info.value)


def test_entry_ids_are_safe_and_distinct() -> None:
    assert beat.entry_id("nightly-report") == "nightly-report"
    odd = beat.entry_id("proj.add(2, 2)")
    assert odd.startswith("proj-add-2--2--")
    assert odd != beat.entry_id("proj.add(2,-2)")


def test_add_periodic_task_as_celery_and_refuses_a_schedule_that_never_runs() -> None:
    app = new_app()
    key = app.add_periodic_task(crontab(minute=0, hour=7), app.tasks["proj.tick"].s("daily"),
                                name="daily", enabled=False, queue="reports")
    entry = app.conf.beat_schedule[key]
    assert entry["task"] == "proj.tick"
    assert entry["args"] == ("daily",)
    assert entry["enabled"] is False
    assert entry["options"] == {"queue": "reports"}
    seconds = app.add_periodic_task(10.0, app.tasks["proj.tick"].s(), sub_minute=True)
    assert app.conf.beat_schedule[seconds]["schedule"] == 10.0  # stored as given
    assert beat.entries(app)[beat.entry_id(seconds)].schedule == schedule(10.0)
    # Celery code as written: no opt-in, an interval no cron expresses.
    three = app.add_periodic_task(3, app.tasks["proj.tick"].s("3s"), name="three")
    assert beat.entries(app)[beat.entry_id(three)].spec.every == 3
    with pytest.raises(ScheduleError, match="never"):
        app.add_periodic_task(crontab(day_of_month=31, month_of_year=4),
                              app.tasks["proj.tick"].s())


# -- plan and sync ---------------------------------------------------------------------------


def test_sync_creates_then_updates_in_place_then_changes_nothing(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, timezone="Europe/Paris", beat_schedule={
        "morning": {"task": "proj.tick", "schedule": crontab(minute=0, hour=9),
                    "args": ("morning",)},
        "every-5": {"task": "proj.tick", "schedule": timedelta(minutes=5)},
    })
    client = stack.emu.scheduler_client()
    changes = beat.plan(stack.app, client)
    assert [c.action for c in changes] == ["create", "create"]
    beat.apply(changes, client)
    made = jobs(stack)
    assert sorted(made) == ["proj-every-5", "proj-morning"]
    morning = made["proj-morning"]
    assert morning.schedule == "0 9 * * *"
    assert morning.time_zone == "Europe/Paris"
    assert morning.http_target.uri == f"{stack.url}/_tasks/beat/morning"
    assert morning.description == "celery-gcp proj: morning"
    assert morning.retry_config.retry_count == 3
    assert made["proj-every-5"].schedule == "*/5 * * * *"
    assert {c.action for c in beat.plan(stack.app, client)} == {"keep"}

    stack.app.conf.beat_schedule = {
        **stack.app.conf.beat_schedule,
        "morning": {"task": "proj.tick", "schedule": crontab(minute=30, hour=8),
                    "job": {"retry_count": 1}},
    }
    [update] = [c for c in beat.plan(stack.app, client) if c.action == "update"]
    assert [(path, old, new) for path, old, new in update.fields] == [
        ("schedule", "0 9 * * *", "30 8 * * *"), ("retry_config.retry_count", 3, 1)]
    assert "schedule: '0 9 * * *' -> '30 8 * * *'" in update.describe()
    # Updated in place: a create or a delete would fail here.
    stack.emu.faults.fail_rpc("CreateJob", grpc.StatusCode.INTERNAL, times=10)
    stack.emu.faults.fail_rpc("DeleteJob", grpc.StatusCode.INTERNAL, times=10)
    beat.sync(stack.app, client)
    assert jobs(stack)["proj-morning"].schedule == "30 8 * * *"
    assert {c.action for c in beat.plan(stack.app, client)} == {"keep"}


def test_disabled_entries_pause_their_job(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, beat_schedule={
        "hourly": {"task": "proj.tick", "schedule": 3600, "enabled": False}})
    client = stack.emu.scheduler_client()
    beat.sync(stack.app, client)
    assert jobs(stack)["proj-hourly"].state == scheduler_v1.Job.State.PAUSED
    stack.app.conf.beat_schedule = {"hourly": {"task": "proj.tick", "schedule": 3600}}
    [change] = beat.plan(stack.app, client)
    assert change.fields == [("state", 2, 1)]
    beat.sync(stack.app, client)
    assert jobs(stack)["proj-hourly"].state == scheduler_v1.Job.State.ENABLED


def test_prune_deletes_only_this_apps_jobs(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, beat_schedule={
        "a": {"task": "proj.tick", "schedule": 60}, "b": {"task": "proj.tick", "schedule": 60}})
    client = stack.emu.scheduler_client()
    beat.sync(stack.app, client)
    foreign = {"http_target": {"uri": "http://127.0.0.1:9/x"}, "schedule": "* * * * *"}
    client.create_job(parent=JOBS.rsplit("/", 1)[0],
                      job={**foreign, "name": f"{JOBS}/proj-handmade"})
    client.create_job(parent=JOBS.rsplit("/", 1)[0], job={
        **foreign, "name": f"{JOBS}/other-a", "description": "celery-gcp other: a"})
    stack.app.conf.beat_schedule = {"a": {"task": "proj.tick", "schedule": 60}}
    assert [c.action for c in beat.plan(stack.app, client)] == ["keep"]  # no prune, no delete
    changes = beat.sync(stack.app, client, prune=True)
    assert [(c.action, c.name) for c in changes] == [("keep", f"{JOBS}/proj-a"),
                                                     ("delete", f"{JOBS}/proj-b")]
    assert sorted(jobs(stack)) == ["other-a", "proj-a", "proj-handmade"]


def test_a_job_not_made_by_the_app_is_never_taken_over(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, beat_schedule={"a": {"task": "proj.tick",
                                                             "schedule": 60}})
    client = stack.emu.scheduler_client()
    client.create_job(parent=JOBS.rsplit("/", 1)[0], job={
        "name": f"{JOBS}/proj-a", "schedule": "0 0 * * *",
        "http_target": {"uri": "http://127.0.0.1:9/x"}})
    with pytest.raises(ScheduleError, match="was not made by this app"):
        beat.plan(stack.app, client)


def test_concurrent_syncs_converge(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, beat_schedule={
        f"e{i}": {"task": "proj.tick", "schedule": 60 * (i + 1),
                  "enabled": i % 2 == 0} for i in range(5)})
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def sync() -> None:
        client = stack.emu.scheduler_client()
        start.wait()
        try:
            beat.sync(stack.app, client)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sync) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    made = jobs(stack)
    assert sorted(made) == [f"proj-e{i}" for i in range(5)]
    assert [made[f"proj-e{i}"].state for i in range(5)] == [1, 2, 1, 2, 1]
    assert {c.action for c in beat.plan(stack.app, stack.emu.scheduler_client())} == {"keep"}


def test_cli_beat_plan_and_sync(stack_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stack: Stack = stack_factory(tasks, beat_schedule={
        "hourly": {"task": "proj.tick", "schedule": crontab(minute=15)}})
    monkeypatch.setenv("CLOUD_SCHEDULER_EMULATOR_HOST", stack.emu.address)
    monkeypatch.setattr("celery_gcp.cli.find_app", lambda name: stack.app)
    runner = CliRunner()
    planned = runner.invoke(main, ["-A", "proj", "beat", "plan"])
    assert planned.exit_code == 0, planned.output
    assert f"create {JOBS}/proj-hourly  (entry 'hourly')" in planned.output
    assert "schedule: None -> '15 * * * *'" in planned.output
    assert jobs(stack) == {}
    synced = runner.invoke(main, ["-A", "proj", "beat", "sync"])
    assert synced.exit_code == 0, synced.output
    assert list(jobs(stack)) == ["proj-hourly"]
    again = runner.invoke(main, ["-A", "proj", "beat", "sync"])
    assert again.output.startswith(f"keep   {JOBS}/proj-hourly")
    assert "runs: each fire of '15 * * * *' (Etc/UTC) sends 1 task" in planned.output
    stack.app.conf.beat_schedule = {"bad": {"task": "proj.tick", "schedule": 90.5}}
    refused = runner.invoke(main, ["-A", "proj", "beat", "plan"])
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1
    assert "use 90 or 91 seconds" in refused.output
    stack.app.conf.beat_schedule = {"sunrise": {
        "task": "proj.tick", "schedule": solar("sunrise", 48.85, 2.35)}}
    refused = runner.invoke(main, ["-A", "proj", "beat", "plan"])
    assert refused.exit_code == 1
    assert "solar times move every day" in refused.output


def test_cli_beat_plan_and_sync_of_an_interval_no_cron_expresses(
        stack_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stack: Stack = stack_factory(tasks, timezone="Europe/Paris", beat_schedule={
        "often": {"task": "proj.tick", "schedule": 200.0},
        "five-hours": {"task": "proj.tick", "schedule": timedelta(hours=5)}})
    monkeypatch.setenv("CLOUD_SCHEDULER_EMULATOR_HOST", stack.emu.address)
    monkeypatch.setattr("celery_gcp.cli.find_app", lambda name: stack.app)
    runner = CliRunner()
    planned = runner.invoke(main, ["-A", "proj", "beat", "plan"])
    assert planned.exit_code == 0, planned.output
    assert ("runs: every 200 seconds on the clock (k * 200s since 1970-01-01T00:00Z): job "
            "'*/10 * * * *' (Etc/UTC) fires 144 times a day, each sending 3 tasks with ETAs "
            "+0s, +200s, +400s from the fire: 432 tasks a day (Cloud Scheduler bills per job, "
            "not per fire: this costs what one job costs)") in planned.output
    assert ("job '0 */4 * * *' (Etc/UTC) fires 6 times a day, each sending 0 or 1 tasks: "
            "about 4.8 tasks a day") in planned.output
    synced = runner.invoke(main, ["-A", "proj", "beat", "sync"])
    assert synced.exit_code == 0, synced.output
    made = jobs(stack)
    assert (made["proj-often"].schedule, made["proj-often"].time_zone) == (
        "*/10 * * * *", "Etc/UTC")
    assert made["proj-five-hours"].schedule == "0 */4 * * *"
    assert {c.action for c in beat.plan(stack.app, stack.emu.scheduler_client())} == {"keep"}


# -- firing ----------------------------------------------------------------------------------


def test_job_fires_at_local_time_across_dst_and_runs_its_task_once(
        stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, manual_clock=True, timezone="Europe/Paris",
                                 beat_schedule={"nine": {"task": "proj.tick",
                                                         "schedule": crontab(minute=0, hour=9),
                                                         "args": ("nine",)}})
    assert stack.clock is not None
    paris = ZoneInfo("Europe/Paris")
    # 2027-03-28: clocks go from 02:00 CET to 03:00 CEST in Paris.
    stack.clock.set(datetime(2027, 3, 27, 8, 0, tzinfo=paris).timestamp())
    beat.sync(stack.app, stack.emu.scheduler_client())
    for day, utc_hour in ((27, 8), (28, 7)):  # 09:00 CET = 08:00 UTC; 09:00 CEST = 07:00 UTC
        fire = datetime(2027, 3, day, 9, 0, tzinfo=paris)
        assert fire.astimezone(UTC).hour == utc_hour
        stack.clock.set(fire.timestamp() - 1)
        stack.emu.wait_idle()
        assert len(stack.ran.calls) == day - 27  # nothing ran before 09:00 local
        stack.clock.set(fire.timestamp() + 1)
        [*_, (_, run)] = stack.ran.wait_for(day - 26)
        assert run["label"] == "nine"
        assert run["id"] == f"proj-nine-{int(fire.timestamp())}"
        assert run["at"] == fire + timedelta(seconds=1)
        stack.emu.wait_idle()  # let the dispatch answer before the clock jumps a day
    stack.emu.wait_idle()
    assert len(stack.ran.calls) == 2


def signed(stack: Stack, url: str) -> dict[str, str]:
    """The Authorization header Cloud Scheduler would send (the emulator's key)."""
    assert stack.emu.server is not None
    token = stack.emu.server.issuer.mint(stack.app.conf.gcp_service_account, url)
    return {"Authorization": f"Bearer {token}"}


def post_fire(stack: Stack, entry: str, when: datetime, job: str = "proj-x") -> httpx.Response:
    url = f"{stack.url}/_tasks/beat/{entry}"
    return httpx.post(url, headers={
        "X-CloudScheduler": "true", "X-CloudScheduler-JobName": job,
        "X-CloudScheduler-ScheduleTime": when.isoformat(), **signed(stack, url)})


def test_a_retried_fire_sends_one_task(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, beat_schedule={"x": {"task": "proj.tick",
                                                             "schedule": 60}})
    when = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    first, again = post_fire(stack, "x", when), post_fire(stack, "x", when)
    assert first.status_code == again.status_code == 200
    assert first.json()["task_ids"] == again.json()["task_ids"] == [
        f"proj-x-{int(when.timestamp())}"]
    stack.ran.wait_for(1)
    stack.emu.wait_idle()
    assert len(stack.ran.calls) == 1


def test_celery_day_rule_skips_days_cron_would_run(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, beat_schedule={"friday-13": {
        "task": "proj.tick", "schedule": crontab(minute=0, hour=0, day_of_month=13,
                                                 day_of_week="fri")}})
    [entry] = beat.entries(stack.app).values()
    assert entry.spec.check_day
    monday_13 = post_fire(stack, "friday-13", datetime(2026, 7, 13, tzinfo=UTC))
    assert monday_13.status_code == 200
    assert "not a run day" in monday_13.json()["skipped"]
    friday_13 = post_fire(stack, "friday-13", datetime(2026, 11, 13, tzinfo=UTC))
    assert "skipped" not in friday_13.json()
    stack.ran.wait_for(1)
    stack.emu.wait_idle()
    assert len(stack.ran.calls) == 1


def step_through(stack: Stack, instants: list[datetime]) -> None:
    """Move the manual clock to just past each instant in turn; one more run at each."""
    assert stack.clock is not None
    for count, at in enumerate(instants, start=1):
        stack.clock.set(at.timestamp() + 0.5)
        stack.ran.wait_for(count)
        stack.emu.wait_idle()  # the fire (or the run) is answered before the clock moves on
        assert len(stack.ran.calls) == count, (at, stack.ran.calls)


def test_every_30_seconds_runs_twice_a_minute_at_00_and_30(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, manual_clock=True, beat_schedule={
        "often": {"task": "proj.tick", "schedule": timedelta(seconds=30), "args": ("30s",)}})
    assert stack.clock is not None
    minute = int(stack.clock.now()) // 60 * 60 + 60
    stack.clock.set(minute - 5)
    beat.sync(stack.app, stack.emu.scheduler_client())
    assert jobs(stack)["proj-often"].schedule == "* * * * *"
    instants = [datetime.fromtimestamp(minute + 30 * k, UTC) for k in range(6)]  # 3 minutes
    step_through(stack, instants)
    for at, (_, run) in zip(instants, stack.ran.calls, strict=True):
        assert run["id"] == f"proj-often-{int(at.timestamp())}"
        assert at <= run["at"] <= at + timedelta(seconds=0.5)
        assert run["label"] == "30s"
    assert {run["at"].second for _, run in stack.ran.calls} == {0, 30}


def test_every_200_seconds_runs_at_its_instants_over_an_hour(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, manual_clock=True, beat_schedule={
        "often": {"task": "proj.tick", "schedule": 200.0}})
    assert stack.clock is not None
    start = int(stack.clock.now()) // 600 * 600 + 600  # the job's first fire: a multiple of 600
    stack.clock.set(start - 100)
    beat.sync(stack.app, stack.emu.scheduler_client())
    instants = [datetime.fromtimestamp(t, UTC) for t in range(start, start + 3600, 200)]
    assert len(instants) == 18
    step_through(stack, instants)
    assert [run["id"] for _, run in stack.ran.calls] == [
        f"proj-often-{int(at.timestamp())}" for at in instants]
    for at, (_, run) in zip(instants, stack.ran.calls, strict=True):
        assert at <= run["at"] <= at + timedelta(seconds=0.5)
        assert int(at.timestamp()) % 200 == 0


def test_a_duplicated_or_overlapping_fire_sends_no_run_twice(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, manual_clock=True, beat_schedule={
        "often": {"task": "proj.tick", "schedule": 30}})
    assert stack.clock is not None
    when = datetime.fromtimestamp(stack.clock.now() // 60 * 60 + 60, UTC)
    stack.clock.set(when.timestamp())
    names = [f"proj-often-{int(when.timestamp()) + 30 * k}" for k in range(3)]
    first = post_fire(stack, "often", when, job="proj-often").json()
    again = post_fire(stack, "often", when, job="proj-often").json()  # delivered twice
    forced = post_fire(stack, "often", when + timedelta(seconds=10), job="proj-often").json()
    assert first["task_ids"] == again["task_ids"] == names[:2]
    assert forced["task_ids"] == names[1:]  # a fire off the grid: the same instants' names
    step_through(stack, [when + timedelta(seconds=30 * k) for k in range(3)])
    assert [run["id"] for _, run in stack.ran.calls] == names


def test_bad_fires_are_refused(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tasks, beat_schedule={"x": {"task": "proj.tick",
                                                             "schedule": 60}})
    assert post_fire(stack, "gone", datetime.now(UTC)).status_code == 404
    url = f"{stack.url}/_tasks/beat/x"
    bad_time = httpx.post(url, headers={"X-CloudScheduler-ScheduleTime": "yesterday",
                                        **signed(stack, url)})
    assert bad_time.status_code == 400
    assert "RFC 3339" in bad_time.json()["detail"]
    bad_job = httpx.post(url, headers={"X-CloudScheduler-JobName": "a/b", **signed(stack, url)})
    assert bad_job.status_code == 400
    stack.emu.faults.fail_rpc("CreateTask", grpc.StatusCode.PERMISSION_DENIED)
    assert post_fire(stack, "x", datetime.now(UTC)).status_code == 503
    unsigned = httpx.post(url, headers={"X-CloudScheduler-ScheduleTime": "2026-11-25T00:00:00Z"})
    assert unsigned.status_code == 401  # a fire without Cloud Scheduler's token runs nothing
    stack.emu.wait_idle()
    assert stack.ran.calls == []
