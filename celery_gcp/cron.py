"""Cloud Scheduler's schedule semantics: unix-cron expressions evaluated in an IANA time zone.

The emulator's job runner calls it to decide when a job fires, and :mod:`celery_gcp.schedules`
to tell when a synced periodic task runs. It is pure (no I/O, no global state besides an LRU
cache of parsed schedules) and depends only on croniter and zoneinfo.

The format and the parser are in :mod:`celery_gcp.cron_syntax`.

Daylight saving time: Cloud Scheduler documents no exact rule. Its page only says (section
"Time zone")::

    For some time zones, daylight saving time can cause jobs to run or not run unexpectedly.
    This is because Cloud Scheduler runs on wall clock time. In instances where a time can
    occur twice (such as the case when clocks go backwards) and your job is scheduled at this
    time, your scheduled job may observe execution anomalies.

So this module follows the standard cron behaviour, Vixie cron's (also ISC cron and cronie, the
crons of most Linux distributions), from its cron(8) page::

    If time has moved forward, those jobs that would have run in the interval that has been
    skipped will be run immediately. Conversely, if time has moved backward, care is taken to
    avoid running jobs twice. [...] Only jobs that run at a particular time (not specified as
    @hourly, nor with '*' in the hour or minute specifier) are affected. Jobs which are
    specified with wildcards are run based on the new time immediately. [...] Time changes of
    more than 3 hours are considered to be corrections to the clock or timezone, and the new
    time is used immediately.

Concretely, with a *fixed-time* schedule (neither the minute nor the hour field starts with ``*``)
and a *wildcard* schedule (one of them does, e.g. ``*/15 * * * *`` or ``30 * * * *``):

* spring forward (wall times that do not exist): a fixed-time schedule whose time falls in the gap
  fires once, at the transition instant (the first wall-clock minute after the gap: ``30 2 * * *``
  in Europe/Paris on 2025-03-30 fires at 03:00 CEST = 01:00 UTC); a wildcard schedule skips the
  nonexistent minutes. (Vixie runs every job at once for a jump of at most 5 minutes, which no
  current zone has; that is reproduced too.)
* fall back (wall times that occur twice): a fixed-time schedule fires at the first occurrence
  only (``30 1 * * *`` in America/New_York on 2025-11-02 fires at 01:30 EDT, not again at 01:30
  EST); a wildcard schedule fires in both occurrences (``*/30 * * * *`` keeps firing every 30
  real minutes).
* transitions of more than 3 hours are clock corrections: gap times are skipped and repeated
  times fire twice, whatever the schedule.

croniter does the calendar arithmetic (finding the next matching wall-clock minute, the
day-of-month/day-of-week OR, month lengths, leap years) on naive wall-clock datetimes. Parsing and
time zones are done in cron_syntax.py because croniter differs from Cloud Scheduler there: it
accepts 6 and 7 fields, ``L``/``W``/``#``/``?``/``R``/``@daily``, ``5/15`` and reversed ranges that
wrap (``50-10``), it reads an equal range such as ``MON-MON`` or ``7-7`` as the *whole* field, its
messages do not say which field is wrong, and with zone-aware datetimes it fires a fixed-time job
twice when clocks go back. So each field is validated and expanded there, croniter gets an
expression made only of numbers, ``a-b`` ranges and ``*``, and the wall-clock times it yields are
mapped to UTC instants by the rules above.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo

from croniter import CroniterBadDateError, croniter

from .cron_syntax import _parse, _Schedule, zone
from .exceptions import InvalidSchedule

__all__ = ["InvalidSchedule", "fires_between", "next_fire", "validate", "zone"]


@functools.lru_cache(maxsize=1024)
def _compiled(schedule: str, time_zone: str) -> _Schedule:
    return _parse(schedule, time_zone)


# --- wall clock to instants ---------------------------------------------------------------------

#: Vixie cron: a forward jump of at most this many minutes is a late wake-up (all jobs catch up).
_LATE_WAKEUP = timedelta(minutes=5)
#: Vixie cron: a jump of more than this is a clock correction, not daylight saving time.
_CLOCK_CORRECTION = timedelta(hours=3)


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    assert offset is not None  # always set: the datetimes here carry UTC or a ZoneInfo
    return offset


def _transition(zone: tzinfo, before: datetime, after: datetime) -> datetime:
    """The first instant in ``(before, after]`` (UTC, whole seconds) with ``after``'s offset."""
    old = _offset(before.astimezone(zone))
    while after - before > timedelta(seconds=1):
        middle = before + timedelta(seconds=(after - before) // timedelta(seconds=2))
        if _offset(middle.astimezone(zone)) == old:
            before = middle
        else:
            after = middle
    return after


def _instants(schedule: _Schedule, wall: datetime) -> tuple[datetime | None, datetime | None]:
    """The UTC instants at which a matching wall-clock minute fires.

    Returns ``(primary, repeat)``: ``primary`` is None when the minute is skipped, ``repeat`` is
    the second occurrence of a repeated minute when that fires too.
    """
    zone = schedule.zone
    first = _offset(wall.replace(tzinfo=zone, fold=0))
    second = _offset(wall.replace(tzinfo=zone, fold=1))
    if first == second:  # the usual case: the wall time occurs exactly once
        return (wall - first).replace(tzinfo=UTC), None
    if first > second:
        # Clocks went back and this minute occurs twice. Vixie cron: "if time has moved
        # backward, care is taken to avoid running jobs twice" -- except wildcard jobs, and
        # except after a jump of more than 3 hours, which is treated as a clock correction.
        earlier = (wall - first).replace(tzinfo=UTC)
        later = (wall - second).replace(tzinfo=UTC)
        if schedule.wildcard or first - second > _CLOCK_CORRECTION:
            return earlier, later
        return earlier, None
    # Clocks went forward over this minute. Vixie cron: "those jobs that would have run in the
    # interval that has been skipped will be run immediately" -- fixed-time jobs only, and not
    # after a jump of more than 3 hours (a clock correction).
    jump = second - first
    if jump > _CLOCK_CORRECTION or (schedule.wildcard and jump > _LATE_WAKEUP):
        return None, None
    # The gap is [T + first, T + second) in wall time, so the transition T lies in this interval.
    start = (wall - second).replace(tzinfo=UTC)
    end = (wall - first).replace(tzinfo=UTC)
    return _transition(zone, start, end), None


def _fires_after(schedule: _Schedule, after: datetime) -> Iterator[datetime]:
    """Every fire strictly after ``after``, in order, as aware UTC datetimes."""
    local = after.astimezone(schedule.zone)
    wall = local.replace(tzinfo=None, fold=0)
    first = _offset(local.replace(fold=0))
    second = _offset(local.replace(fold=1))
    if first > second and local.fold == 0:
        # ``after`` is in the first pass of a repeated hour: the repeats of the wall times
        # already passed are still to come, so start from the beginning of the repeated span.
        wall -= first - second
    wall_clock = croniter(schedule.expression, wall - timedelta(minutes=1), day_or=True)
    # Wall-clock order gives the primary instants in order; the repeats of a repeated hour come
    # after the primaries of that hour, so they wait in a heap until a later primary is reached.
    repeats: list[datetime] = []
    last: datetime | None = None
    while True:
        try:
            candidate = wall_clock.get_next(datetime)
        except CroniterBadDateError:  # pragma: no cover - _parse rejects schedules that never fire
            break
        primary, repeat = _instants(schedule, candidate)
        if repeat is not None:
            heapq.heappush(repeats, repeat)
        if primary is None:
            continue
        while repeats and repeats[0] <= primary:
            instant = heapq.heappop(repeats)
            if instant > after and instant != last:
                last = instant
                yield instant
        if primary > after and primary != last:
            last = primary
            yield primary
    while repeats:  # pragma: no cover - only after croniter gives up
        instant = heapq.heappop(repeats)
        if instant > after and instant != last:
            last = instant
            yield instant


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {moment!r}")
    return moment.astimezone(UTC)


# --- public API ---------------------------------------------------------------------------------


def validate(schedule: str, time_zone: str) -> None:
    """Check a job's ``schedule`` and ``time_zone`` as Cloud Scheduler does.

    Raises :class:`InvalidSchedule` with a message saying what is wrong and how to fix it.
    """
    _compiled(schedule, time_zone)


def next_fire(schedule: str, time_zone: str, after: datetime) -> datetime:
    """The first time the job fires strictly after ``after``, as an aware datetime in UTC.

    ``after`` must be timezone-aware, in any zone. ``schedule`` is read in ``time_zone``'s wall
    clock, daylight saving time included (see the module docstring for the gap and overlap
    rules). Raises :class:`InvalidSchedule` for a bad schedule or time zone.
    """
    compiled = _compiled(schedule, time_zone)
    for fire in _fires_after(compiled, _aware(after, "after")):
        return fire
    raise InvalidSchedule(  # pragma: no cover - _parse rejects schedules that never fire
        f"schedule {schedule!r} never fires after {after.isoformat()}"
    )


def fires_between(
    schedule: str, time_zone: str, start: datetime, end: datetime
) -> Iterator[datetime]:
    """Every fire ``t`` with ``start < t <= end``, in order, as aware UTC datetimes.

    Consecutive windows ``(a, b]``, ``(b, c]`` therefore never miss or repeat a fire, and the
    first value is ``next_fire(schedule, time_zone, start)`` when that is not after ``end``.
    The schedule and time zone are checked at once, before iteration starts.
    """
    compiled = _compiled(schedule, time_zone)
    first, last = _aware(start, "start"), _aware(end, "end")

    def fires() -> Iterator[datetime]:
        for fire in _fires_after(compiled, first):
            if fire > last:
                return
            yield fire

    return fires()
