"""Interval schedules on Cloud Scheduler: a plain cron where one is exact, else a fan-out.

An interval that a cron expresses exactly (minutes dividing an hour, hours dividing a day, a
day, a week) is that cron, in the app's time zone. Any other whole number of seconds (``30``,
``200``, ``timedelta(minutes=7)``, ``timedelta(hours=5)``) runs as a *fan-out*:

* its runs are the instants ``k * every`` seconds since the Unix epoch (1970-01-01 00:00 UTC):
  evenly spaced for ever, the same in every time zone and across daylight saving time;
* a job fires in UTC every ``period`` seconds: the interval's repeat with the clock,
  ``lcm(every, 60)`` (200 s: 10 minutes), when a cron can fire at that period, else the
  coarsest clock period not longer than the interval (7 minutes: 6; 5 hours: 4) and under a
  minute each minute;
* each fire sends the runs in ``[fire, fire + period)`` as tasks with those ETAs (Cloud Tasks
  ``schedule_time``), each named from its instant, so a fire Cloud Scheduler retries or
  delivers twice sends no run twice.

Cloud Scheduler bills per job, not per fire, so a fan-out costs what any one job costs.
Pure: no I/O, no croniter.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from .exceptions import ScheduleError

__all__ = ["FAN_OUT_ZONE", "describe", "exact", "fan_out_period", "instants", "next_instant",
           "plural", "whole_seconds"]

#: Fan-out jobs fire in UTC: their instants do not depend on a zone.
FAN_OUT_ZONE = "Etc/UTC"
_DAY = 86400
#: The longest period a fan-out job fires at: ETAs stay within a day.
_LONGEST_PERIOD = _DAY


def _clock_periods() -> dict[int, str]:
    """Seconds -> the cron of each period a cron fires at exactly."""
    periods: dict[int, str] = {}
    for minutes in (m for m in range(1, 60) if 60 % m == 0):
        periods[minutes * 60] = f"{'*' if minutes == 1 else f'*/{minutes}'} * * * *"
    for hours in (h for h in range(1, 24) if 24 % h == 0):
        periods[hours * 3600] = f"0 {'*' if hours == 1 else f'*/{hours}'} * * *"
    periods[_DAY] = "0 0 * * *"
    periods[7 * _DAY] = "0 0 * * 1"  # Monday midnight
    return periods


_PERIODS = _clock_periods()


def plural(count: float, unit: str) -> str:
    """``"1 minute"``, ``"2 minutes"``, ``"2.5 seconds"``."""
    number = str(int(count)) if count == int(count) else f"{count:g}"
    return f"{number} {unit}" + ("" if count == 1 else "s")


def exact(seconds: float) -> str | None:
    """The cron that runs every ``seconds`` exactly on the clock, or ``None``."""
    return _PERIODS.get(int(seconds)) if seconds == int(seconds) else None


def whole_seconds(seconds: float, name: str) -> int:
    """``seconds`` as an int; raises :class:`ScheduleError` under 1 s or with a fraction
    (Cloud Tasks does not promise sub-second dispatch, and runs are named by the second)."""
    if seconds < 1:
        raise ScheduleError(f"{name}: the interval must be at least 1 second")
    if seconds != int(seconds):
        low, high = math.floor(seconds), math.ceil(seconds)
        raise ScheduleError(
            f"{name}: the interval must be a whole number of seconds (runs are sent as tasks "
            f"named by the second); use {low} or {high} seconds, or a crontab(...)")
    return int(seconds)


def fan_out_period(every: int) -> tuple[int, str]:
    """``(period seconds, cron)`` of the UTC job that fans out an interval of ``every`` s."""
    repeat = every * 60 // math.gcd(every, 60)
    if repeat in _PERIODS and repeat <= _LONGEST_PERIOD:
        return repeat, _PERIODS[repeat]
    period = max(p for p in _PERIODS if p <= max(60, min(every, _LONGEST_PERIOD)))
    return period, _PERIODS[period]


def instants(every: int, period: int, fire: datetime) -> list[datetime]:
    """The runs one fire at ``fire`` sends: ``k * every`` s since the epoch, in
    ``[fire, fire + period)``, in UTC."""
    start = fire.astimezone(UTC)
    first = math.ceil(start.timestamp() / every) * every
    end = start.timestamp() + period
    return [datetime.fromtimestamp(t, UTC) for t in range(first, math.ceil(end), every)
            if t < end]


def describe(expression: str, zone: str, every: int, period: int) -> str:
    """How an entry runs, for ``beat plan``: the job, the tasks per fire and per day."""
    if not every:
        return f"runs: each fire of '{expression}' ({zone}) sends 1 task"
    fires = _DAY / period
    low, high = period // every, -(-period // every)
    if low == high:
        offsets = ", ".join(f"+{k * every}s" for k in range(low))
        per_fire = f"{plural(low, 'task')} with ETAs {offsets} from the fire"
    else:
        per_fire = f"{low} or {high} tasks"
    tasks = _DAY / every
    shown = f"{tasks:g}" if tasks == int(tasks) else f"about {tasks:.1f}"
    return (f"runs: every {plural(every, 'second')} on the clock (k * {every}s since "
            f"1970-01-01T00:00Z): job '{expression}' ({zone}) fires {fires:g} times a day, "
            f"each sending {per_fire}: {shown} tasks a day (Cloud Scheduler bills per job, "
            "not per fire: this costs what one job costs)")


def next_instant(every: int, after: datetime) -> datetime:
    """The first run strictly after ``after`` (aware), in UTC."""
    stamp = math.floor(after.timestamp() / every + 1) * every
    moment = datetime.fromtimestamp(stamp, UTC)
    while moment <= after:  # float rounding at the boundary
        moment += timedelta(seconds=every)
    return moment
