"""Schedules bound to an app pickle, as in Celery: the app comes back as a new app with the same
settings (``Celery.__reduce__``), so the schedule keeps its time zone."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from celery_gcp import Celery, get_current_app, signature
from celery_gcp.schedules import BaseSchedule, crontab, maybe_schedule, schedule, solar


def six_utc() -> datetime:
    """A module-level ``nowfun``: picklable by reference, as Celery needs it too."""
    return datetime(2025, 6, 1, 6, tzinfo=UTC)


@pytest.fixture
def paris() -> Celery:
    return Celery("proj", timezone="Europe/Paris", set_as_current=False,
                  beat_schedule={"daily": {"task": "proj.tick", "schedule": 86400}})


@pytest.mark.parametrize("bound", [
    lambda app: crontab(minute=0, hour=9, day_of_week="mon-fri", app=app, nowfun=six_utc),
    lambda app: crontab(minute="*/15", app=app),
    lambda app: schedule(timedelta(minutes=30), app=app, nowfun=six_utc),
    lambda app: maybe_schedule(3600, app=app),
    lambda app: solar("sunrise", 48.85, 2.35, app=app),
])
def test_schedules_bound_to_an_app_pickle(paris: Celery, bound: Any) -> None:
    original: BaseSchedule = bound(paris)
    restored = pickle.loads(pickle.dumps(original))
    assert restored == original
    assert repr(restored) == repr(original)
    assert restored.app is not paris
    assert restored.app.main == "proj"
    assert restored.app.conf.timezone == "Europe/Paris"
    assert restored.nowfun is original.nowfun
    assert copy.deepcopy(original) == original


def test_a_pickled_crontab_keeps_running_in_the_app_time_zone(paris: Celery) -> None:
    nine = crontab(minute=0, hour=9, app=paris, nowfun=six_utc)
    restored = pickle.loads(pickle.dumps(nine))
    # 09:00 in Paris in June is 07:00 UTC: one hour after six_utc().
    assert restored.remaining_estimate(datetime(2025, 6, 1, 5, tzinfo=UTC)) == timedelta(hours=1)
    assert restored.is_due(datetime(2025, 5, 31, 8)) == nine.is_due(datetime(2025, 5, 31, 8))


def test_an_app_pickles_by_its_settings_as_celery(paris: Celery) -> None:
    current = get_current_app()
    paris.conf.task_default_queue = "reports"  # a change after the settings were loaded
    restored = pickle.loads(pickle.dumps(paris))
    assert restored.conf.task_default_queue == "reports"
    assert restored.conf.timezone == "Europe/Paris"
    assert restored.conf.beat_schedule == paris.conf.beat_schedule
    assert get_current_app() is current  # unpickling does not change the current app


def test_a_schedule_in_the_beat_schedule_of_its_own_app_pickles() -> None:
    app = Celery("proj", timezone="Europe/Paris", set_as_current=False)
    entry = crontab(minute=0, hour=7)
    app.add_periodic_task(entry, signature("proj.tick"), name="morning")
    bound = app.conf.beat_schedule["morning"]["schedule"]
    restored = pickle.loads(pickle.dumps(maybe_schedule(bound, app=app)))
    assert restored == entry
    assert restored.app.conf.beat_schedule["morning"]["schedule"] is restored

