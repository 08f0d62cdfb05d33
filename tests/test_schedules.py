"""Celery's schedules (crontab, schedule, solar) and how Cloud Scheduler runs them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from celery_gcp.cron import fires_between, validate
from celery_gcp.exceptions import ScheduleError
from celery_gcp.schedules import (
    BaseSchedule,
    CronSpec,
    crontab,
    maybe_schedule,
    schedstate,
    schedule,
    solar,
)

PARIS = ZoneInfo("Europe/Paris")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- crontab fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "spec", "expected"), [
    ("minute", "*/15", {0, 15, 30, 45}),
    ("day_of_month", "*/3", set(range(1, 32, 3))),
    ("month_of_year", "2-12/2", {2, 4, 6, 8, 10, 12}),
    ("minute", "2-9/5", {2, 7}),
    ("day_of_week", "tuesday,sunday,fri", {0, 2, 5}),
    ("day_of_week", "fri-mon", {0, 1, 5, 6}),
    ("day_of_week", "MON-Fri", {1, 2, 3, 4, 5}),
    ("month_of_year", "nov-feb", {1, 2, 11, 12}),
    ("month_of_year", "January,JUL", {1, 7}),
    ("minute", "50-10", {*range(11), *range(50, 60)}),
    ("minute", "50-10/5", {50, 55, 0, 5, 10}),
    ("hour", "1, 2,  5", {1, 2, 5}),
    ("hour", "*", set(range(24))),
    ("hour", 7, {7}),
    ("minute", [5, 42], {5, 42}),
    ("day_of_week", ("mon", "wed-thu", 6), {1, 3, 4, 6}),
    ("day_of_month", iter([1, 15]), {1, 15}),
])
def test_field_parsing(field: str, spec: Any, expected: set[int]) -> None:
    assert getattr(crontab(**{field: spec}), field) == expected


@pytest.mark.parametrize(("kwargs", "fragments"), [
    ({"day_of_week": "7"}, ["day_of_week", "0-6", "sun"]),
    ({"hour": 24}, ["hour", "0-23"]),
    ({"hour": "24"}, ["hour", "0-23"]),
    ({"minute": 60}, ["minute", "0-59"]),
    ({"day_of_month": 0}, ["day_of_month", "1-31"]),
    ({"day_of_month": 32}, ["day_of_month", "1-31"]),
    ({"month_of_year": 13}, ["month_of_year", "1-12"]),
    ({"month_of_year": "jaan"}, ["month_of_year", "'jaan'", "jan-dec"]),
    ({"day_of_week": "funday"}, ["day_of_week", "sunday-saturday"]),
    ({"minute": "5/15"}, ["minute", "step"]),
    ({"minute": "*/0"}, ["minute", "step"]),
    ({"hour": "1,,2"}, ["hour", "empty"]),
    ({"hour": "-3"}, ["hour", "0-23"]),
    ({"minute": [5, 60]}, ["minute", "0-59"]),
])
def test_invalid_fields_name_the_field_and_the_allowed_values(
    kwargs: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(ValueError) as info:
        crontab(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("spec", [1.5, True, None, [None], [True]])
def test_field_of_the_wrong_type_is_a_type_error(spec: Any) -> None:
    with pytest.raises(TypeError, match="minute"):
        crontab(minute=spec)


def test_equality_hash_and_repr() -> None:
    assert crontab(day_of_week="1, 2") == crontab(day_of_week="1-2")
    assert hash(crontab(day_of_week="1, 2")) == hash(crontab(day_of_week="mon-tue"))
    assert crontab(minute=0) != crontab(minute=1)
    assert crontab() != schedule(60)
    assert repr(crontab(minute=0, hour=8, day_of_month=5)) == "<crontab: 0 8 5 * * (m/h/dM/MY/d)>"
    assert repr(crontab(minute=iter([42, 5]))) == "<crontab: 42,5 * * * * (m/h/dM/MY/d)>"


def test_from_string() -> None:
    assert crontab.from_string("0 8 5 * *") == crontab(minute=0, hour=8, day_of_month=5)
    assert crontab.from_string("*/5 9-17 * jan-mar mon-fri") == crontab(
        minute="*/5", hour="9-17", day_of_week="mon-fri", month_of_year="jan-mar")


@pytest.mark.parametrize("text", ["0 8 5 *", "0 0 8 5 * *", ""])
def test_from_string_needs_five_fields(text: str) -> None:
    with pytest.raises(ValueError, match="5 fields"):
        crontab.from_string(text)


def test_runs_on_needs_day_of_month_and_day_of_week() -> None:
    friday_13th = crontab(day_of_week="fri", day_of_month=13)
    assert friday_13th.runs_on(date(2025, 6, 13))
    assert not friday_13th.runs_on(date(2025, 6, 6))  # a Friday, not the 13th
    assert not friday_13th.runs_on(date(2025, 5, 13))  # the 13th, a Tuesday
    assert crontab(day_of_week=0).runs_on(date(2025, 6, 1))  # 0 is Sunday
    assert not crontab(month_of_year="jan").runs_on(date(2025, 6, 1))
    assert schedule(60).runs_on(date(2025, 6, 1))


# --- crontab on Cloud Scheduler -----------------------------------------------------------------


@pytest.mark.parametrize(("schedule_", "expression", "check_day"), [
    (crontab(), "* * * * *", False),
    (crontab(minute=0, hour=9, day_of_week="mon-fri"), "0 9 * * 1-5", False),
    (crontab(minute="*/15"), "0-45/15 * * * *", False),
    (crontab(minute=[5, 42], hour="0-23", day_of_month="1-31"), "5,42 * * * *", False),
    (crontab(minute=0, hour=0, day_of_month=1), "0 0 1 * *", False),
    (crontab(minute=0, hour=0, month_of_year="nov-feb"), "0 0 * 1,2,11,12 *", False),
    (crontab(day_of_week="fri-mon"), "* * * * 0,1,5,6", False),
    (crontab(day_of_week="0-6", day_of_month=13), "* * 13 * *", False),
    (crontab(minute=30, hour=14, day_of_week="mon", day_of_month=18), "30 14 18 * 1", True),
    (crontab(minute=0, hour=8, day_of_month="1-7", day_of_week="tue"), "0 8 1-7 * 2", True),
])
def test_crontab_cron(schedule_: crontab, expression: str, check_day: bool) -> None:
    spec = schedule_.cron()
    assert spec == CronSpec(expression, check_day=check_day)
    validate(spec.expression, "UTC")


def test_every_third_hour_fires_on_exactly_those_hours() -> None:
    spec = crontab(minute=0, hour="*/3").cron()
    assert spec.expression in ("0 0-21/3 * * *", "0 0,3,6,9,12,15,18,21 * * *")
    validate(spec.expression, "UTC")
    fires = list(fires_between(spec.expression, "UTC", utc(2025, 6, 1), utc(2025, 6, 2)))
    assert [(fire.hour, fire.minute) for fire in fires] == [
        (3, 0), (6, 0), (9, 0), (12, 0), (15, 0), (18, 0), (21, 0), (0, 0)]


@pytest.mark.parametrize("kwargs", [
    {"day_of_month": 31, "month_of_year": 4},
    {"day_of_month": 30, "month_of_year": 2},
    {"day_of_month": "30-31", "month_of_year": "feb"},
    {"day_of_month": 31, "month_of_year": "apr,jun,sep,nov", "day_of_week": "mon"},
])
def test_crontab_that_never_runs(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ScheduleError, match="never runs") as info:
        crontab(**kwargs).cron()
    assert "day_of_month" in str(info.value)
    assert "month_of_year" in str(info.value)


def test_empty_field_never_runs() -> None:
    with pytest.raises(ScheduleError, match="minute is empty"):
        crontab(minute=[]).cron()


def test_february_29th_and_mixed_months_can_run() -> None:
    assert crontab(minute=0, hour=0, day_of_month=29, month_of_year=2).cron().expression == (
        "0 0 29 2 *")
    validate(crontab(day_of_month=31, month_of_year=[4, 5]).cron().expression, "UTC")


# --- next_run -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("schedule_", "after", "expected"), [
    (crontab(minute=[5, 42], day_of_week="mon-fri"), utc(2010, 9, 11, 14, 30, 15),
     utc(2010, 9, 13, 0, 5)),
    (crontab(minute=30, hour=14, day_of_week="mon", day_of_month=18),
     utc(2010, 1, 18, 14, 30, 15), utc(2010, 10, 18, 14, 30)),
    (crontab(minute=0, hour=0, day_of_month=29), utc(2010, 1, 29), utc(2010, 3, 29)),
    (crontab(minute=0, hour=0, day_of_month=29), utc(2012, 1, 29), utc(2012, 2, 29)),
    (crontab(minute=0, hour=0, day_of_month=29, month_of_year=2, day_of_week="mon"),
     utc(2025, 1, 1), utc(2044, 2, 29)),
    (schedule(timedelta(minutes=15)), utc(2025, 6, 1, 12, 7, 30), utc(2025, 6, 1, 12, 15)),
    (schedule(timedelta(hours=6)), utc(2025, 6, 1, 12), utc(2025, 6, 1, 18)),
    (schedule(timedelta(days=7)), utc(2025, 6, 1), utc(2025, 6, 2)),  # Sunday -> Monday
])
def test_next_run(schedule_: BaseSchedule, after: datetime, expected: datetime) -> None:
    assert schedule_.next_run(after) == expected


def test_next_run_across_the_end_of_daylight_saving_time() -> None:
    after = datetime(2017, 10, 28, 9, 0, tzinfo=PARIS)
    got = crontab(minute=0, hour=9).next_run(after, "Europe/Paris")
    assert got == datetime(2017, 10, 29, 9, 0, tzinfo=PARIS)
    assert got.tzinfo == PARIS
    assert got.utcoffset() == timedelta(hours=1)


def test_next_run_checks_the_local_date() -> None:
    # 2024-04-01 is a Monday in Tokyo; 00:30 there is 15:30 UTC on Sunday 2024-03-31.
    first_monday = crontab(minute=30, hour=0, day_of_month=1, day_of_week="mon")
    got = first_monday.next_run(utc(2024, 1, 1), "Asia/Tokyo")
    assert got == datetime(2024, 4, 1, 0, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert got == utc(2024, 3, 31, 15, 30)


def test_next_run_returns_zoneinfo_and_needs_an_aware_datetime() -> None:
    assert crontab().next_run(utc(2025, 1, 1)).tzinfo == ZoneInfo("UTC")
    with pytest.raises(ValueError, match="timezone-aware"):
        crontab().next_run(datetime(2025, 1, 1))


def _runs(schedule_: BaseSchedule, start: datetime, end: datetime) -> Iterator[datetime]:
    moment = schedule_.next_run(start)
    while moment <= end:
        yield moment
        moment = schedule_.next_run(moment)


@pytest.mark.parametrize("schedule_", [
    crontab(minute=0, hour=9, day_of_week="tue", day_of_month="13"),  # 2024-02-13
    crontab(minute="50-10/20", hour="23-1", day_of_week="sat-mon", day_of_month="1-10,28-31"),
    crontab(minute=15, hour="*/7", day_of_month="*/9", month_of_year="feb-mar"),
    crontab(minute=0, hour=12, day_of_month=29, day_of_week="thu"),
])
def test_next_run_agrees_with_celery_rule_minute_by_minute(schedule_: crontab) -> None:
    # Celery's definition: every field matches, day of month AND day of week.
    start, end = utc(2024, 1, 1), utc(2024, 4, 1)
    expected = []
    moment = start + timedelta(minutes=1)
    while moment <= end:
        if (moment.minute in schedule_.minute and moment.hour in schedule_.hour
                and schedule_.runs_on(moment.date())):
            expected.append(moment)
        moment += timedelta(minutes=1)
    assert expected  # the case is not vacuous
    assert list(_runs(schedule_, start, end)) == expected


@pytest.mark.parametrize(("seconds", "after", "expected"), [
    (5, utc(2025, 6, 1, 12, 0, 7), utc(2025, 6, 1, 12, 0, 10)),
    (5, utc(2025, 6, 1, 12, 0, 55), utc(2025, 6, 1, 12, 1)),
    # 12:00:00 UTC is 249825600 * 7 s after the epoch: the runs go on every 7 s past 12:01.
    (7, utc(2025, 6, 1, 12, 0, 57), utc(2025, 6, 1, 12, 1, 3)),
    (45, utc(2025, 6, 1, 12, 0, 30), utc(2025, 6, 1, 12, 0, 45)),
    (45, utc(2025, 6, 1, 12, 0, 45), utc(2025, 6, 1, 12, 1, 30)),
    (200, utc(2025, 6, 1, 12, 0), utc(2025, 6, 1, 12, 3, 20)),
    (timedelta(hours=5), utc(2025, 6, 1, 12, 0), utc(2025, 6, 1, 15, 0)),
])
def test_next_run_of_a_fan_out_is_the_next_multiple_since_the_epoch(
        seconds: float | timedelta, after: datetime, expected: datetime) -> None:
    assert schedule(seconds).next_run(after) == expected


def test_sub_minute_runs_follow_each_other() -> None:
    runs = list(_runs(schedule(30), utc(2025, 6, 1), utc(2025, 6, 1, 0, 2)))
    assert runs == [utc(2025, 6, 1, 0, 0, 30), utc(2025, 6, 1, 0, 1),
                    utc(2025, 6, 1, 0, 1, 30), utc(2025, 6, 1, 0, 2)]


# --- schedule on Cloud Scheduler ----------------------------------------------------------------


@pytest.mark.parametrize(("run_every", "expression"), [
    (60, "* * * * *"),
    (timedelta(minutes=2), "*/2 * * * *"),
    (timedelta(minutes=15), "*/15 * * * *"),
    (1800.0, "*/30 * * * *"),
    (timedelta(hours=1), "0 * * * *"),
    (timedelta(hours=2), "0 */2 * * *"),
    (timedelta(hours=12), "0 */12 * * *"),
    (timedelta(hours=24), "0 0 * * *"),
    (timedelta(days=7), "0 0 * * 1"),
])
def test_exact_intervals(run_every: float | timedelta, expression: str) -> None:
    assert schedule(run_every).cron() == CronSpec(expression)
    validate(expression, "UTC")


@pytest.mark.parametrize(("run_every", "expression", "every", "period"), [
    (30, "* * * * *", 30, 60),
    (1, "* * * * *", 1, 60),
    (7, "* * * * *", 7, 60),              # repeats every 7 minutes: no cron fires at that
    (45, "*/3 * * * *", 45, 180),
    (90, "*/3 * * * *", 90, 180),
    (200.0, "*/10 * * * *", 200, 600),    # 3 runs per fire, at +0, +200, +400 s
    (timedelta(minutes=7), "*/6 * * * *", 420, 360),
    (timedelta(minutes=45), "*/30 * * * *", 2700, 1800),
    (timedelta(hours=5), "0 */4 * * *", 18000, 14400),
    (timedelta(days=2), "0 0 * * *", 172800, 86400),
    (timedelta(days=10), "0 0 * * *", 864000, 86400),  # ETAs stay within a day
])
def test_intervals_no_cron_expresses_fan_out(run_every: float | timedelta, expression: str,
                                             every: int, period: int) -> None:
    spec = schedule(run_every).cron()
    assert spec == CronSpec(expression, every=every, period=period)
    assert spec.zone("Europe/Paris") == "Etc/UTC"
    validate(expression, "UTC")
    # Over two days of fires, every multiple of the interval is sent once, by one fire.
    start, end = utc(2025, 6, 1), utc(2025, 6, 3)
    sent = [run for fire in fires_between(expression, "UTC", start - timedelta(seconds=1), end)
            for run in spec.runs(fire)]
    first = -(-int(start.timestamp()) // every) * every
    expected = [datetime.fromtimestamp(t, UTC)
                for t in range(first, int(end.timestamp()) + period, every)]
    assert sent == expected[:len(sent)]
    assert sent[-1] >= end - timedelta(seconds=every)


def test_exact_intervals_stay_plain_crons() -> None:
    assert schedule(timedelta(minutes=15)).cron().zone("Europe/Paris") == "Europe/Paris"
    assert schedule(timedelta(minutes=15)).cron().runs(utc(2025, 6, 1)) == [utc(2025, 6, 1)]


def test_a_fan_out_fire_sends_the_runs_of_its_period() -> None:
    spec = schedule(30).cron()
    assert spec.runs(utc(2025, 6, 1, 12, 0)) == [utc(2025, 6, 1, 12, 0),
                                                 utc(2025, 6, 1, 12, 0, 30)]
    # A fire off the grid (a forced run) sends the runs of the 60 s from it: the same instants.
    assert spec.runs(utc(2025, 6, 1, 12, 0, 10)) == [utc(2025, 6, 1, 12, 0, 30),
                                                     utc(2025, 6, 1, 12, 1)]
    # Every 7 minutes on a 6-minute job: in each 42 minutes one fire (12:36 here) sends none.
    assert schedule(timedelta(minutes=7)).cron().runs(utc(2025, 6, 1, 12, 36)) == []


@pytest.mark.parametrize(("seconds", "message"), [
    (0.5, "at least 1 second"), (0, "at least 1 second"), (-5, "at least 1 second"),
    (7.5, "use 7 or 8 seconds"), (60.5, "use 60 or 61 seconds"),
])
def test_intervals_under_a_second_or_with_a_fraction_are_refused(seconds: float,
                                                                 message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        schedule(seconds).cron()


def test_the_plan_says_how_an_interval_runs() -> None:
    from celery_gcp import intervals

    spec = schedule(200).cron()
    text = intervals.describe(spec.expression, "Etc/UTC", spec.every, spec.period)
    assert "job '*/10 * * * *' (Etc/UTC) fires 144 times a day" in text
    assert "3 tasks with ETAs +0s, +200s, +400s from the fire: 432 tasks a day" in text
    assert "bills per job, not per fire" in text
    spec = schedule(timedelta(hours=5)).cron()
    text = intervals.describe(spec.expression, "Etc/UTC", spec.every, spec.period)
    assert "fires 6 times a day, each sending 0 or 1 tasks: about 4.8 tasks a day" in text
    assert intervals.describe("0 9 * * *", "Europe/Paris", 0, 0) == (
        "runs: each fire of '0 9 * * *' (Europe/Paris) sends 1 task")


def test_schedule_arguments() -> None:
    every = schedule(30, relative=True)
    assert every.run_every == timedelta(seconds=30)
    assert every.seconds == 30.0
    assert every.relative is True
    assert every == schedule(timedelta(seconds=30))
    assert hash(every) == hash(schedule(30.0))
    assert repr(schedule(timedelta(hours=2))) == "<freq: every 2 hours>"
    with pytest.raises(TypeError, match="run_every"):
        schedule("30")  # type: ignore[arg-type]


# --- solar --------------------------------------------------------------------------------------


def test_solar_cannot_run_on_cloud_scheduler() -> None:
    sunrise = solar("sunrise", 48.85, 2.35)
    assert (sunrise.event, sunrise.lat, sunrise.lon) == ("sunrise", 48.85, 2.35)
    assert sunrise == solar("sunrise", 48.85, 2.35)
    with pytest.raises(ScheduleError, match="crontab") as info:
        sunrise.cron()
    assert "solar times move every day" in str(info.value)
    with pytest.raises(ScheduleError):
        sunrise.next_run(utc(2025, 1, 1))


@pytest.mark.parametrize(("args", "fragment"), [
    (("noon", 0, 0), "solar_noon"),
    (("sunrise", 91, 0), "latitude"),
    (("sunrise", -90.5, 0), "latitude"),
    (("sunrise", 0, 181), "longitude"),
    (("sunrise", 0, -180.1), "longitude"),
])
def test_solar_validation(args: tuple[str, float, float], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        solar(*args)


@pytest.mark.parametrize("event", [
    "dawn_astronomical", "dawn_nautical", "dawn_civil", "sunrise", "solar_noon", "sunset",
    "dusk_civil", "dusk_nautical", "dusk_astronomical",
])
def test_solar_events(event: str) -> None:
    assert solar(event, -90, 180).event == event


# --- maybe_schedule, Celery's helpers -----------------------------------------------------------


def test_maybe_schedule() -> None:
    every = maybe_schedule(30)
    assert isinstance(every, schedule)
    assert every.run_every == timedelta(seconds=30)
    assert maybe_schedule(timedelta(minutes=5)) == schedule(300)
    assert maybe_schedule(10, relative=True).relative is True  # type: ignore[attr-defined]
    daily = crontab(minute=0, hour=0)
    assert maybe_schedule(daily) is daily
    app = object()
    assert maybe_schedule(daily, app=app).app is app


@pytest.mark.parametrize("value", ["x", None, True, [30]])
def test_maybe_schedule_refuses_other_values(value: Any) -> None:
    with pytest.raises(TypeError, match="timedelta") as info:
        maybe_schedule(value)
    assert repr(value) in str(info.value)


def test_maybe_schedule_points_celery_schedules_to_ours() -> None:
    from celery.schedules import crontab as celery_crontab  # type: ignore[import-untyped]

    with pytest.raises(TypeError, match=r"celery_gcp\.schedules, not celery"):
        maybe_schedule(celery_crontab(minute=0))


def test_custom_schedule_class_has_no_cron() -> None:
    class Custom(BaseSchedule):
        pass

    with pytest.raises(ScheduleError, match="crontab"):
        Custom().cron()


def test_is_due_and_remaining_estimate() -> None:
    hourly = crontab(minute=0, nowfun=lambda: utc(2025, 6, 1, 12, 30))
    assert hourly.now() == utc(2025, 6, 1, 12, 30)
    assert hourly.remaining_estimate(utc(2025, 6, 1, 12)) == timedelta(minutes=30)
    assert hourly.remaining_estimate(utc(2025, 6, 1, 11)) == timedelta(minutes=-30)
    assert hourly.is_due(utc(2025, 6, 1, 12)) == schedstate(False, 1800.0)
    assert hourly.is_due(utc(2025, 6, 1, 11)) == (True, 1800.0)
    assert hourly.is_due(datetime(2025, 6, 1, 11)).is_due  # naive: read as UTC


def test_helpers_use_the_app_time_zone() -> None:
    app = SimpleNamespace(conf=SimpleNamespace(timezone="Europe/Paris"))
    nine = crontab(minute=0, hour=9, app=app, nowfun=lambda: utc(2025, 6, 1, 6))  # 08:00 Paris
    assert nine.remaining_estimate(utc(2025, 6, 1, 5)) == timedelta(hours=1)
    # A naive last run is read in the app's time zone: after 08:00 Paris on May 31 came the
    # 09:00 run (read as UTC, 10:00 Paris, the next run would still be ahead).
    assert nine.is_due(datetime(2025, 5, 31, 8)) == schedstate(True, 3600.0)
    assert nine.is_due(datetime(2025, 5, 31, 9)) == schedstate(False, 3600.0)
    assert crontab(nowfun=lambda: datetime(2025, 6, 1)).now() == utc(2025, 6, 1)


def test_import_does_not_load_croniter() -> None:
    code = "import sys, celery_gcp.schedules; print('croniter' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
