"""English-like schedules (App Engine cron syntax), which Cloud Scheduler accepts next to unix-cron.

:func:`validate` and :func:`next_fire` take either kind: a schedule that starts with ``every``
or has a time of day (``HH:MM``) is English-like, anything else goes to :mod:`celery_gcp.cron`.
The grammar read here:

* intervals: ``every N minutes|mins|hours`` (``minute``, ``min``, ``hour`` too), optionally
  followed by ``from HH:MM to HH:MM`` (fires at the start time and every N after it up to the end
  time, each day; an end before the start runs past midnight) or by ``synchronized`` (the day
  from 00:00 cut into equal intervals; N must divide 24 hours);
* custom: ``[every|ORDINALS] DAYS [of MONTHS] HH:MM``, e.g. ``every monday 09:00``,
  ``every day 00:00``, ``1st,third mon,wed of march 17:00``, ``1,15 of month 09:00``.
  ORDINALS are ``1st`` to ``5th`` or ``first`` to ``fifth`` (the nth such weekday of the month),
  DAYS weekday names (full or three letters), ``day``, or day-of-month numbers (these need
  ``of MONTHS``), MONTHS month names (full or three letters) or ``month``.

Times are wall-clock times in the job's time zone. A plain interval counts from the previous
fire (App Engine counts from the end of the previous run: the emulator never overlaps runs, so
the two differ by a run's length). A wall time that does not exist (clocks go forward) is read
with the offset before the change (PEP 495, fold=0: 02:30 in a 02:00-03:00 gap fires at 03:30);
one that occurs twice fires at its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from .. import cron

__all__ = ["next_fire", "validate"]

_INTERVAL = re.compile(
    r"^every (?P<n>\d+) (?P<unit>minutes?|mins?|hours?)"
    r"(?: from (?P<start>\d\d:\d\d) to (?P<end>\d\d:\d\d)| (?P<sync>synchronized))?\Z")
_CUSTOM = re.compile(r"^(?:(?P<ordinals>\S+) )?(?P<days>\S+)(?: of (?P<months>\S+))? "
                     r"(?P<time>\d\d:\d\d)\Z")
_ORDINALS = {"1st": 1, "first": 1, "2nd": 2, "second": 2, "3rd": 3, "third": 3, "4th": 4,
             "fourth": 4, "5th": 5, "fifth": 5}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_DAY = timedelta(days=1)
_SEARCH_DAYS = 366 * 29  # "5th monday of february" recurs only every 28 years or so


@dataclass(frozen=True)
class _Interval:
    step: timedelta
    window: tuple[time, time] | None  # None: from the previous fire


@dataclass(frozen=True)
class _Custom:
    ordinals: frozenset[int] | None  # None: every
    weekdays: frozenset[int] | None  # None: every day (or the days of month below)
    monthdays: frozenset[int] | None
    months: frozenset[int]
    at: time


def _bad(schedule: str, why: str) -> cron.InvalidSchedule:
    return cron.InvalidSchedule(
        f"invalid schedule {schedule!r}: {why}. Use unix-cron ('*/5 * * * *') or the App Engine "
        "syntax, e.g. 'every 5 minutes', 'every monday 09:00', "
        "'every 2 hours from 10:00 to 14:00', '1st,3rd monday of month 09:00'")


def _clock(schedule: str, text: str) -> time:
    hours, minutes = int(text[:2]), int(text[3:])
    if hours > 23 or minutes > 59:
        raise _bad(schedule, f"{text} is not a time of day (00:00 to 23:59)")
    return time(hours, minutes)


def _names(schedule: str, text: str, names: list[str], what: str) -> frozenset[int]:
    found: set[int] = set()
    for word in text.split(","):
        match = [i for i, name in enumerate(names) if word in (name, name[:3])]
        if not match:
            raise _bad(schedule, f"{word!r} is not a {what}")
        found.add(match[0])
    return frozenset(found)


def _parse(schedule: str) -> _Interval | _Custom:
    text = " ".join(schedule.lower().split())
    interval = _INTERVAL.match(text)
    if interval:
        n = int(interval["n"])
        step = timedelta(hours=n) if interval["unit"].startswith("hour") else timedelta(minutes=n)
        if n == 0:
            raise _bad(schedule, "the interval must be at least 1")
        if interval["sync"]:
            if _DAY % step:
                raise _bad(schedule, "a synchronized interval must divide 24 hours evenly")
            return _Interval(step, (time(0, 0), time(23, 59)))
        if interval["start"]:
            window = (_clock(schedule, interval["start"]), _clock(schedule, interval["end"]))
            return _Interval(step, window)
        return _Interval(step, None)
    custom = _CUSTOM.match(text)
    if not custom or (text.startswith("every ") and custom["ordinals"] != "every"):
        raise _bad(schedule, "it is neither an interval nor a custom schedule")
    ordinals: frozenset[int] | None = None
    if custom["ordinals"] not in (None, "every"):
        words = custom["ordinals"].split(",")
        if any(w not in _ORDINALS for w in words):
            raise _bad(schedule, f"in {custom['ordinals']!r}, ordinals are 1st to 5th "
                       "(or first to fifth)")
        ordinals = frozenset(_ORDINALS[w] for w in words)
    months = (frozenset(range(12)) if custom["months"] in (None, "month")
              else _names(schedule, custom["months"], _MONTHS, "month"))
    at = _clock(schedule, custom["time"])
    days = custom["days"]
    if re.fullmatch(r"\d+(?:,\d+)*", days):
        if custom["months"] is None or custom["ordinals"] is not None:
            raise _bad(schedule, "days of the month are written 'N,M of MONTHS HH:MM'")
        monthdays = frozenset(int(d) for d in days.split(","))
        if not monthdays <= set(range(1, 32)):
            raise _bad(schedule, "days of the month are 1 to 31")
        return _Custom(None, None, monthdays, months, at)
    if days == "day":
        if ordinals is not None:
            raise _bad(schedule, "write 'every day' or days of the month ('1,15 of month')")
        return _Custom(None, None, None, months, at)
    return _Custom(ordinals, _names(schedule, days, _WEEKDAYS, "weekday"), None, months, at)


def _instant(wall: datetime, zone: tzinfo) -> datetime:
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _matches(rule: _Custom, day: date) -> bool:
    if day.month - 1 not in rule.months:
        return False
    if rule.monthdays is not None:
        return day.day in rule.monthdays
    if rule.weekdays is None:
        return True
    return day.weekday() in rule.weekdays and (
        rule.ordinals is None or (day.day - 1) // 7 + 1 in rule.ordinals)


def _next(rule: _Interval | _Custom, zone: tzinfo, after: datetime) -> datetime | None:
    if isinstance(rule, _Interval) and rule.window is None:
        return after + rule.step
    local = after.astimezone(zone).date() - _DAY  # yesterday: a window may run past midnight
    for offset in range(_SEARCH_DAYS):
        day = local + offset * _DAY
        for wall in _walls(rule, day):
            fire = _instant(wall, zone)
            if fire > after:
                return fire
    return None


def _walls(rule: _Interval | _Custom, day: date) -> list[datetime]:
    if isinstance(rule, _Custom):
        return [datetime.combine(day, rule.at)] if _matches(rule, day) else []
    assert rule.window is not None
    start, end = (datetime.combine(day, t) for t in rule.window)
    if end < start:
        end += _DAY
    walls = []
    while start <= end:
        walls.append(start)
        start += rule.step
    return walls


def _english(schedule: str) -> bool:
    # Intervals start with "every" and custom schedules end in HH:MM; unix-cron has neither.
    return schedule.lstrip().lower().startswith("every") or ":" in schedule


def validate(schedule: str, time_zone: str) -> None:
    """Check a job's schedule, unix-cron or English-like; raises :class:`cron.InvalidSchedule`
    saying what is wrong."""
    if not _english(schedule):
        cron.validate(schedule, time_zone)
        return
    rule = _parse(schedule)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    if _next(rule, cron.zone(time_zone), start) is None:
        raise _bad(schedule, "it never fires")


def next_fire(schedule: str, time_zone: str, after: datetime) -> datetime:
    """The first fire strictly after ``after`` (aware), as an aware UTC datetime."""
    if not _english(schedule):
        return cron.next_fire(schedule, time_zone, after)
    fire = _next(_parse(schedule), cron.zone(time_zone), after.astimezone(UTC))
    if fire is None:
        raise _bad(schedule, f"it never fires after {after.isoformat()}")
    return fire
