"""Celery's ``celery.utils.time``: the date, interval and time zone helpers task code imports.

The same names, signatures and results as Celery's, on the standard library (``zoneinfo``,
``datetime.fromisoformat``) instead of dateutil and tzlocal. The autoretry countdown of a
worker run is :func:`get_exponential_backoff_interval`, so the two cannot disagree.
"""

from __future__ import annotations

import numbers
import random
import time as _time
from calendar import monthrange
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cached_property
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "add_seconds_to_datetime",
    "adjust_timestamp",
    "delta_resolution",
    "ffwd",
    "get_exponential_backoff_interval",
    "humanize_seconds",
    "is_naive",
    "localize",
    "make_aware",
    "maybe_iso8601",
    "maybe_make_aware",
    "maybe_timedelta",
    "rate",
    "remaining",
    "subtract_datetimes",
    "timezone",
    "to_utc",
    "utcoffset",
    "weekday",
    "yearmonth",
]

DAYNAMES = "sun", "mon", "tue", "wed", "thu", "fri", "sat"
WEEKDAYS = dict(zip(DAYNAMES, range(7), strict=True))
MONTHNAMES = "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"
YEARMONTHS = dict(zip(MONTHNAMES, range(1, 13), strict=True))
TIME_UNITS = (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0))


class _Zone:
    """Celery's ``timezone``: the UTC and local zones and conversions between them."""

    def tz_or_local(self, tzinfo: tzinfo | str | None = None) -> tzinfo:
        """``tzinfo`` (a name or a zone), or the local zone when ``None``."""
        return self.local if tzinfo is None else self.get_timezone(tzinfo)

    def to_local(self, dt: datetime, local: tzinfo | str | None = None,
                 orig: tzinfo | None = None) -> datetime:
        """``dt`` in ``local`` (default: the local zone); a naive ``dt`` is in ``orig`` (UTC)."""
        if is_naive(dt):
            dt = make_aware(dt, orig or self.utc)
        return localize(dt, self.tz_or_local(local))

    def to_system(self, dt: datetime) -> datetime:
        """``dt`` in the system's zone."""
        return dt.astimezone(tz=None)

    def to_local_fallback(self, dt: datetime) -> datetime:
        """``dt`` in the local zone (a naive ``dt`` is taken to be local)."""
        return make_aware(dt, self.local) if is_naive(dt) else localize(dt, self.local)

    def get_timezone(self, zone: str | tzinfo) -> tzinfo:
        """A :class:`~zoneinfo.ZoneInfo` for a name; a zone is returned as it is."""
        return ZoneInfo(zone) if isinstance(zone, str) else zone

    @cached_property
    def local(self) -> tzinfo:
        """The system's zone (its current UTC offset; Celery asks tzlocal for the name)."""
        local = datetime.now().astimezone().tzinfo
        assert local is not None  # astimezone() always attaches a zone
        return local

    @cached_property
    def utc(self) -> tzinfo:
        """UTC, as a :class:`~zoneinfo.ZoneInfo`."""
        return ZoneInfo("UTC")


timezone = _Zone()


def maybe_timedelta(delta: Any) -> Any:
    """A number of seconds as a :class:`~datetime.timedelta`; anything else as it is."""
    if isinstance(delta, numbers.Real):
        return timedelta(seconds=float(delta))
    return delta


def delta_resolution(dt: datetime, delta: timedelta) -> datetime:
    """``dt`` truncated to the unit of ``delta`` (days, hours or minutes; else ``dt``)."""
    seconds = max(delta.total_seconds(), 0)
    args = dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
    for fields, unit in ((3, 86400), (4, 3600), (5, 60)):
        if seconds / unit >= 1.0:
            return datetime(*args[:fields], tzinfo=dt.tzinfo)  # type: ignore[arg-type, misc]
    return dt


def add_seconds_to_datetime(dt: datetime, seconds: float) -> datetime:
    """``dt`` plus elapsed ``seconds`` (across a DST change for an aware ``dt``)."""
    delta = timedelta(seconds=seconds)
    if is_naive(dt):
        return dt + delta
    return (dt.astimezone(UTC) + delta).astimezone(dt.tzinfo)


def subtract_datetimes(end: datetime, start: datetime) -> timedelta:
    """The elapsed time from ``start`` to ``end``; naive datetimes are taken as UTC."""
    return maybe_make_aware(end).astimezone(UTC) - maybe_make_aware(start).astimezone(UTC)


def remaining(start: datetime, ends_in: timedelta, now: datetime | None = None,
              relative: bool = False) -> timedelta:
    """The time left until ``start + ends_in`` (rounded down to ``ends_in``'s unit if
    ``relative``), measured in UTC so that a DST change between counts.

    Celery 5.6+ also moves a ``relative`` deadline that a DST change rounds to before
    ``start``; here the rounding is Celery 5.5's (the same everywhere else).
    """
    now = now or datetime.now(UTC)
    if isinstance(ends_in, timedelta) and not (relative and ends_in >= timedelta(days=1)):
        end_date = add_seconds_to_datetime(start, ends_in.total_seconds())
    else:  # day-resolution relative deadlines advance by calendar days
        end_date = start + ends_in
    if relative:
        end_date = delta_resolution(end_date, ends_in).replace(microsecond=0)
    return end_date.astimezone(timezone.utc) - now.astimezone(timezone.utc)


def rate(r: Any) -> float:
    """A rate (``"100/m"``, ``"2/h"``, ``"0.5/s"``, or a number) per second; 0 for none."""
    if not r:
        return 0
    if isinstance(r, str):
        from ..queues import parse_rate  # the rate_limit parser the queues use

        return parse_rate(r) or 0
    return float(r) or 0


def weekday(name: str) -> int:
    """The position of a weekday, 0 (Sunday) to 6: ``weekday("mon") == 1``."""
    try:
        return WEEKDAYS[name[0:3].lower()]
    except KeyError:
        raise KeyError(name) from None


def yearmonth(name: str) -> int:
    """The position of a month, 1 to 12: ``yearmonth("may") == 5``."""
    try:
        return YEARMONTHS[name[0:3].lower()]
    except KeyError:
        raise KeyError(name) from None


def humanize_seconds(secs: float, prefix: str = "", sep: str = "", now: str = "now",
                     microseconds: bool = False) -> str:
    """Seconds in words: ``humanize_seconds(7200) == "2.00 hours"``; ``now`` for zero."""
    secs = float(format(float(secs), ".2f"))
    for unit, divider in TIME_UNITS:
        if secs >= divider:
            amount = secs / divider
            return f"{prefix}{sep}{amount:.2f} {unit}{'s' if amount != 1 else ''}"
    if microseconds and secs > 0.0:
        return f"{prefix}{sep}{secs:.2f} seconds"
    return now


def maybe_iso8601(dt: datetime | str | None) -> datetime | None:
    """An ISO 8601 string as a datetime; a datetime as it is; ``None`` (or empty) as ``None``."""
    if not dt:
        return None
    if isinstance(dt, datetime):
        return dt
    return datetime.fromisoformat(dt)


def is_naive(dt: datetime) -> bool:
    """Whether ``dt`` has no time zone."""
    return dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None


def make_aware(dt: datetime, tz: tzinfo) -> datetime:
    """``dt`` with zone ``tz``; a wall time that occurs twice (DST ends) is the first."""
    dt = dt.replace(tzinfo=tz)
    # Ambiguous (the two folds differ and the time exists): the first. A time in a DST gap is
    # left as it is, as in Celery.
    if dt.replace(fold=0).utcoffset() != dt.replace(fold=1).utcoffset() and _exists(dt):
        dt = dt.replace(fold=0)
    return dt


def _exists(dt: datetime) -> bool:
    back = dt.astimezone(UTC).astimezone(dt.tzinfo)
    return back.replace(tzinfo=None) == dt.replace(tzinfo=None)


def localize(dt: datetime, tz: tzinfo) -> datetime:
    """A naive ``dt`` made aware in ``tz``; an aware UTC ``dt`` converted to ``tz`` (other
    aware datetimes are returned as they are, as in Celery)."""
    if is_naive(dt):
        dt = make_aware(dt, tz)
    if dt.tzinfo in (UTC, timezone.utc):
        dt = dt.astimezone(tz)
    return dt


def to_utc(dt: datetime) -> datetime:
    """A naive ``dt`` taken as UTC."""
    return make_aware(dt, timezone.utc)


def maybe_make_aware(dt: datetime, tz: tzinfo | None = None,
                     naive_as_utc: bool = True) -> datetime:
    """A naive ``dt`` made aware (taken as UTC, then in ``tz``); an aware one as it is."""
    if is_naive(dt):
        if naive_as_utc:
            dt = to_utc(dt)
        return localize(dt, timezone.utc if tz is None else timezone.tz_or_local(tz))
    return dt


class ffwd:
    """Celery's ``ffwd``: a ``relativedelta`` that only adds (absolute fields, then weeks and
    a weekday)."""

    def __init__(self, year: int | None = None, month: int | None = None, weeks: int = 0,
                 weekday: int | None = None, day: int | None = None, hour: int | None = None,
                 minute: int | None = None, second: int | None = None,
                 microsecond: int | None = None, **kwargs: Any) -> None:
        self.year, self.month, self.weeks, self.weekday = year, month, weeks, weekday
        self.day, self.hour, self.minute, self.second = day, hour, minute, second
        self.microsecond = microsecond
        self.days = weeks * 7

    def _fields(self) -> dict[str, int]:
        fields = {"year": self.year, "month": self.month, "day": self.day, "hour": self.hour,
                  "minute": self.minute, "second": self.second,
                  "microsecond": self.microsecond}
        return {key: value for key, value in fields.items() if value is not None}

    def __repr__(self) -> str:
        shown = {**self._fields(), "weeks": self.weeks, "weekday": self.weekday}
        return "ffwd({})".format(", ".join(f"{k}={v!r}" for k, v in shown.items()
                                          if v is not None))

    def __radd__(self, other: Any) -> Any:
        if not isinstance(other, date):
            return NotImplemented
        year = self.year or other.year
        month = self.month or other.month
        day = min(monthrange(year, month)[1], self.day or other.day)
        ret = other.replace(**{**self._fields(), "year": year, "month": month, "day": day})
        if self.weekday is not None:
            ret += timedelta(days=(7 - ret.weekday() + self.weekday) % 7)
        return ret + timedelta(days=self.days)


def utcoffset(time: ModuleType = _time,
              localtime: Callable[..., _time.struct_time] = _time.localtime) -> float:
    """The current offset to UTC in hours (as Celery: positive west of Greenwich)."""
    if localtime().tm_isdst:
        return int(time.altzone) // 3600
    return int(time.timezone) // 3600


def adjust_timestamp(ts: float, offset: int,
                     here: Callable[..., float] = utcoffset) -> float:
    """``ts`` moved from UTC offset ``offset`` (hours) to this machine's."""
    return ts - (offset - here()) * 3600


def get_exponential_backoff_interval(factor: int, retries: int, maximum: int,
                                     full_jitter: bool = False) -> int:
    """Celery's exponential backoff: ``min(maximum, factor * 2**retries)``, then, with
    ``full_jitter``, a random whole number of seconds from 0 to that; never negative.

    >>> [get_exponential_backoff_interval(1, r, 600) for r in range(4)]
    [1, 2, 4, 8]
    """
    countdown: int = min(maximum, factor * (2 ** retries))
    if full_jitter:
        countdown = random.randrange(countdown + 1)
    return max(0, countdown)
