"""Celery's periodic schedules (``crontab``, ``schedule``, ``solar``), run by Cloud Scheduler.

Replace ``from celery.schedules import crontab`` by ``from celery_gcp.schedules import crontab``:
the classes take Celery's arguments, and each one says how Cloud Scheduler runs it with
:meth:`BaseSchedule.cron`, a :class:`CronSpec`. What Cloud Scheduler cannot run as written (an
interval under a second or with a fraction of one, a solar event) raises
:class:`~celery_gcp.exceptions.ScheduleError` naming the nearest schedules it can run.

Two differences from Celery follow from Cloud Scheduler running on the clock:

* ``schedule(run_every)`` is aligned to the clock (``every 15 minutes`` fires at :00, :15, ...),
  not counted from the last run, so ``relative`` has no effect;
* an interval no cron gives exactly (``30``, ``200``, ``timedelta(hours=5)``) runs at the
  instants ``k * interval`` since the Unix epoch: a job fires often enough and each fire sends
  the runs of its period as tasks with ETAs (see :mod:`celery_gcp.intervals`).

Celery ANDs ``day_of_month`` and ``day_of_week`` where cron ORs them. When both are restricted,
the job fires on the OR (a superset) and the beat endpoint skips the days :meth:`runs_on` rejects.

Importing this module does not import croniter: :mod:`celery_gcp.cron` is loaded on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from . import intervals
from .crontab_fields import (
    DAY_OF_MONTH,
    DAY_OF_WEEK,
    HOUR,
    MAX_DAYS,
    MINUTE,
    MONTH_OF_YEAR,
    as_written,
    compress,
    crontab_parser,
    keep,
    parse_field,
)
from .exceptions import ParseException, ScheduleError

__all__ = ["BaseSchedule", "CronSpec", "ParseException", "crontab", "crontab_parser",
           "maybe_schedule", "schedstate", "schedule", "solar"]

class schedstate(NamedTuple):
    """Celery's answer to ``is_due``: whether to run now, and seconds until the next check."""

    is_due: bool
    next: float


@dataclass(frozen=True)
class CronSpec:
    """How one schedule runs on Cloud Scheduler."""

    expression: str
    """Five-field unix cron (``minute hour day-of-month month day-of-week``)."""
    check_day: bool = False
    """The job fires on the OR of the day fields; the beat endpoint skips days where
    :meth:`BaseSchedule.runs_on` is False (Celery ANDs them)."""
    every: int = 0
    """Seconds between runs of a fan-out (0: each fire is one run at its time): the runs are
    the instants ``k * every`` since the Unix epoch (see :mod:`celery_gcp.intervals`)."""
    period: int = 0
    """Seconds between the fires of a fan-out's job (in UTC); each sends its period's runs."""

    def runs(self, fire: datetime) -> list[datetime]:
        """The runs one fire at ``fire`` sends (UTC): ``[fire]`` unless a fan-out."""
        if not self.every:
            return [fire.astimezone(UTC)]
        return intervals.instants(self.every, self.period, fire)

    def zone(self, app_zone: str) -> str:
        """The job's time zone: the app's, or UTC for a fan-out (its runs need no zone)."""
        return intervals.FAN_OUT_ZONE if self.every else app_zone


class BaseSchedule:
    """Base of the schedules: the Cloud Scheduler cron, and Celery's ``is_due`` helpers."""

    def __init__(self, *, nowfun: Callable[[], datetime] | None = None, app: Any = None) -> None:
        self.nowfun = nowfun
        self.app = app

    def cron(self, *, sub_minute: bool = False) -> CronSpec:
        """How Cloud Scheduler runs this schedule; raises :class:`ScheduleError` if it cannot.
        ``sub_minute`` (the former opt-in for intervals under a minute) has no effect."""
        raise ScheduleError(
            f"{self!r} cannot run on Cloud Scheduler, which only runs cron schedules; use a "
            "crontab(...) or a schedule(...) from celery_gcp.schedules"
        )

    def runs_on(self, day: date) -> bool:
        """Whether the task runs on ``day`` (local date) when the cron fires; True by default."""
        return True

    def next_run(self, after: datetime, time_zone: str = "UTC") -> datetime:
        """The first run strictly after ``after`` (timezone-aware) of the synced job.

        The job's cron is read in ``time_zone`` (Cloud Scheduler's rules, daylight saving time
        included); fires on days :meth:`runs_on` rejects are skipped. For a fan-out each of
        its instants is a run. Returns an aware datetime in ``time_zone``.
        """
        spec = self.cron()
        zone = _zone(time_zone)
        if spec.every:
            return intervals.next_instant(spec.every, after).astimezone(zone)
        from . import cron as _cron  # croniter is imported on first use, not at cold start

        _cron.validate(spec.expression, time_zone)
        moment = after
        while True:
            fire = _cron.next_fire(spec.expression, time_zone, moment)
            day = fire.astimezone(zone).date()
            if not self.runs_on(day):
                # The whole local day is skipped: continue from its last instant.
                midnight = datetime.combine(day + timedelta(days=1), time(), zone)
                moment = max(fire, midnight - timedelta(microseconds=1))
                continue
            return fire.astimezone(zone)

    # -- Celery's helpers, for code that calls them directly --------------------------------

    def now(self) -> datetime:
        """The current time: ``nowfun()`` if given, else UTC now; naive values are read in the
        schedule's time zone."""
        return self._aware(self.nowfun() if self.nowfun else datetime.now(UTC))

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        """Time from now until the first run after ``last_run_at`` (negative when overdue)."""
        return self.next_run(self._aware(last_run_at), self._time_zone()) - self.now()

    def is_due(self, last_run_at: datetime) -> schedstate:
        """Celery's ``(is_due, next)``: due if a run came after ``last_run_at``; ``next`` is the
        number of seconds until the next run after now."""
        now, time_zone = self.now(), self._time_zone()
        due = self.next_run(self._aware(last_run_at), time_zone) <= now
        return schedstate(due, (self.next_run(now, time_zone) - now).total_seconds())

    def _time_zone(self) -> str:
        # Celery evaluates schedules in the app's time zone; without an app, UTC.
        name = getattr(getattr(self.app, "conf", None), "timezone", None)
        return name if isinstance(name, str) and name else "UTC"

    def _aware(self, moment: datetime) -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            return moment.replace(tzinfo=_zone(self._time_zone()))
        return moment


def _zone(time_zone: str) -> ZoneInfo:
    # celery_gcp.cron reads "" and "utc" in any case as UTC, as Cloud Scheduler does.
    return ZoneInfo("UTC") if time_zone.lower() in ("", "utc") else ZoneInfo(time_zone)


# --- crontab ------------------------------------------------------------------------------------


class crontab(BaseSchedule):
    """Celery's crontab: runs when every field matches (day of month AND day of week).

    Each field is an int, a string (``*``, ``5``, ``1-5``, ``fri-mon``, ``*/15``, ``0-30/10``,
    ``mon,wed``; names for days and months) or an iterable of them. ``day_of_week`` 0 is Sunday.
    """

    def __init__(
        self,
        minute: Any = "*",
        hour: Any = "*",
        day_of_week: Any = "*",
        day_of_month: Any = "*",
        month_of_year: Any = "*",
        *,
        nowfun: Callable[[], datetime] | None = None,
        app: Any = None,
    ) -> None:
        super().__init__(nowfun=nowfun, app=app)
        minute, hour = keep(minute), keep(hour)
        day_of_week, day_of_month = keep(day_of_week), keep(day_of_month)
        month_of_year = keep(month_of_year)
        self._orig_minute, self._orig_hour = minute, hour
        self._orig_day_of_week, self._orig_day_of_month = day_of_week, day_of_month
        self._orig_month_of_year = month_of_year
        self.minute = parse_field(MINUTE, minute)
        self.hour = parse_field(HOUR, hour)
        self.day_of_week = parse_field(DAY_OF_WEEK, day_of_week)
        self.day_of_month = parse_field(DAY_OF_MONTH, day_of_month)
        self.month_of_year = parse_field(MONTH_OF_YEAR, month_of_year)

    @classmethod
    def from_string(cls, cron: str) -> crontab:
        """A crontab from ``"minute hour day-of-month month day-of-week"``."""
        parts = cron.split()
        if len(parts) != 5:
            raise ValueError(
                f"crontab {cron!r}: expected 5 fields 'minute hour day-of-month month "
                f"day-of-week', got {len(parts)}"
            )
        minute, hour, day_of_month, month_of_year, day_of_week = parts
        return cls(minute, hour, day_of_week, day_of_month, month_of_year)

    def _fields(self) -> tuple[frozenset[int], ...]:
        return tuple(map(frozenset, (self.minute, self.hour, self.day_of_week,
                                     self.day_of_month, self.month_of_year)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, crontab):
            return self._fields() == other._fields()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fields = (self._orig_minute, self._orig_hour, self._orig_day_of_month,
                  self._orig_month_of_year, self._orig_day_of_week)
        return f"<crontab: {' '.join(map(as_written, fields))} (m/h/dM/MY/d)>"

    def runs_on(self, day: date) -> bool:
        """Celery's rule: the month, the day of month and the day of week all match."""
        return (day.month in self.month_of_year and day.day in self.day_of_month
                and day.isoweekday() % 7 in self.day_of_week)

    def cron(self, *, sub_minute: bool = False) -> CronSpec:
        """The cron expression; ``check_day`` when both day fields are restricted."""
        fields = (MINUTE, HOUR, DAY_OF_MONTH, MONTH_OF_YEAR, DAY_OF_WEEK)
        values = (self.minute, self.hour, self.day_of_month, self.month_of_year,
                  self.day_of_week)
        for field, allowed in zip(fields, values, strict=True):
            if not allowed:
                raise ScheduleError(f"{self!r} never runs: its {field.name} is empty")
        if not any(day <= MAX_DAYS[month - 1]
                   for day in self.day_of_month for month in self.month_of_year):
            raise ScheduleError(
                f"{self!r} never runs: no month in month_of_year "
                f"{compress(self.month_of_year, MONTH_OF_YEAR)} has a day in day_of_month "
                f"{compress(self.day_of_month, DAY_OF_MONTH)}"
            )
        parts = [compress(allowed, field) for field, allowed in zip(fields, values, strict=True)]
        return CronSpec(" ".join(parts), check_day=parts[2] != "*" and parts[4] != "*")


# --- schedule -----------------------------------------------------------------------------------


def _describe(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return intervals.plural(seconds / 3600, "hour")
    if seconds >= 60 and seconds % 60 == 0:
        return intervals.plural(seconds / 60, "minute")
    return intervals.plural(seconds, "second")


class schedule(BaseSchedule):
    """Celery's interval schedule, run every ``run_every`` on the clock.

    ``run_every`` is a :class:`~datetime.timedelta` or a number of seconds. ``relative`` is
    accepted for Celery compatibility and stored, but has no effect: Cloud Scheduler fires on the
    clock, so every schedule is aligned to it (every 15 minutes is :00, :15, :30, :45; every
    200 seconds is each multiple of 200 s since the Unix epoch, see :mod:`celery_gcp.intervals`).
    """

    def __init__(
        self,
        run_every: float | timedelta,
        relative: bool = False,
        *,
        nowfun: Callable[[], datetime] | None = None,
        app: Any = None,
    ) -> None:
        super().__init__(nowfun=nowfun, app=app)
        if isinstance(run_every, bool) or not isinstance(run_every, int | float | timedelta):
            raise TypeError(f"schedule run_every={run_every!r}: give a timedelta or seconds")
        if not isinstance(run_every, timedelta):
            run_every = timedelta(seconds=run_every)
        self.run_every = run_every
        self.relative = relative

    @property
    def seconds(self) -> float:
        """``run_every`` in seconds."""
        return self.run_every.total_seconds()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, schedule):
            return self.run_every == other.run_every
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.run_every)

    def __repr__(self) -> str:
        return f"<freq: every {_describe(self.seconds)}>"

    def cron(self, *, sub_minute: bool = False) -> CronSpec:
        """The exact cron for the interval, else a fan-out (:mod:`celery_gcp.intervals`)."""
        expression = intervals.exact(self.seconds)
        if expression is not None:
            return CronSpec(expression)
        every = intervals.whole_seconds(self.seconds,
                                        f"schedule(every {_describe(self.seconds)})")
        period, expression = intervals.fan_out_period(every)
        return CronSpec(expression, every=every, period=period)


# --- solar --------------------------------------------------------------------------------------

_SOLAR_EVENTS = ("dawn_astronomical", "dawn_nautical", "dawn_civil", "sunrise", "solar_noon",
                 "sunset", "dusk_civil", "dusk_nautical", "dusk_astronomical")


class solar(BaseSchedule):
    """Celery's solar schedule: accepted and validated, but Cloud Scheduler cannot run it."""

    def __init__(self, event: str, lat: float, lon: float, *,
                 nowfun: Callable[[], datetime] | None = None, app: Any = None) -> None:
        super().__init__(nowfun=nowfun, app=app)
        if event not in _SOLAR_EVENTS:
            raise ValueError(f"solar event {event!r} is not one of {', '.join(_SOLAR_EVENTS)}")
        if not -90 <= lat <= 90:
            raise ValueError(f"solar latitude {lat!r} is not in -90..90")
        if not -180 <= lon <= 180:
            raise ValueError(f"solar longitude {lon!r} is not in -180..180")
        self.event, self.lat, self.lon = event, lat, lon

    def __eq__(self, other: object) -> bool:
        if isinstance(other, solar):
            return (self.event, self.lat, self.lon) == (other.event, other.lat, other.lon)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.event, self.lat, self.lon))

    def __repr__(self) -> str:
        return f"<solar: {self.event} at latitude {self.lat}, longitude {self.lon}>"

    def cron(self, *, sub_minute: bool = False) -> CronSpec:
        """Always raises :class:`ScheduleError`: solar times are not a cron schedule."""
        raise ScheduleError(
            f"solar({self.event!r}, {self.lat}, {self.lon}) cannot run on Cloud Scheduler: "
            "solar times move every day and Cloud Scheduler only runs cron schedules; use a "
            "crontab(...) at an approximate local time, e.g. crontab(minute=0, hour=7) with the "
            "app's timezone setting"
        )


def maybe_schedule(value: Any, relative: bool = False, app: Any = None) -> BaseSchedule:
    """Celery's coercion: seconds or a timedelta become a :class:`schedule`; schedules pass."""
    if isinstance(value, int | float | timedelta) and not isinstance(value, bool):
        return schedule(value, relative, app=app)
    if isinstance(value, BaseSchedule):
        if app is not None:
            value.app = app
        return value
    hint = ""
    if type(value).__module__.startswith("celery."):
        hint = "; import crontab, schedule and solar from celery_gcp.schedules, not celery"
    raise TypeError(
        f"cannot use {value!r} ({type(value).__name__}) as a schedule: give a number of seconds, "
        f"a timedelta, or a crontab, schedule or solar from celery_gcp.schedules{hint}"
    )
