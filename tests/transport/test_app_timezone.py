"""An assigned ``app.timezone`` reaches Cloud Scheduler: the synced jobs run in it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from celery_gcp import Celery, beat
from celery_gcp.schedules import crontab

from .conftest import Ran, Stack


def tick_task(app: Celery, ran: Ran) -> None:
    @app.task(name="proj.tick")
    def tick() -> None: ...


def test_assigned_app_timezone_is_the_time_zone_of_the_synced_jobs(stack_factory: Any) -> None:
    stack: Stack = stack_factory(tick_task, beat_schedule={
        "morning": {"task": "proj.tick", "schedule": crontab(minute=0, hour=9)}})
    stack.app.timezone = "Europe/Paris"
    client = stack.emu.scheduler_client()
    [change] = beat.plan(stack.app, client)
    assert change.action == "create"
    beat.apply([change], client)

    [job] = client.list_jobs(parent="projects/p/locations/l")
    assert job.time_zone == "Europe/Paris"
    # The emulator's next fire of the job is 09:00 on the Paris clock.
    fire = datetime.fromtimestamp(job.schedule_time.timestamp(), ZoneInfo("Europe/Paris"))
    assert (fire.hour, fire.minute) == (9, 0)
