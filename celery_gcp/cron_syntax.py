"""Cloud Scheduler's unix-cron format: an expression parsed and validated, and a time zone
name read, as Cloud Scheduler does; :mod:`celery_gcp.cron` evaluates what this parses.

The format (https://cloud.google.com/scheduler/docs/configuring/cron-job-schedules):

* five fields, ``minute hour day-of-month month day-of-week``, with the ranges 0-59, 0-23, 1-31,
  1-12 (or ``JAN``-``DEC``) and 0-6 (or ``SUN``-``SAT``; or 7 for Sunday); names are
  case-insensitive three-letter abbreviations;
* ``*`` ("first-last"), inclusive ranges ``a-b``, steps after a range or ``*`` (``*/15``,
  ``1-30/2``) and comma-separated lists;
* nothing else: no seconds or year field, no Quartz/Jenkins extensions (``L``, ``W``, ``#``,
  ``?``, ``H``), no ``@daily``-style macros. The granularity is one minute.

Where Google's page is silent, the parser is as strict as Vixie cron: a step needs a range or
``*`` (``5/15`` is rejected, write ``5-59/15``) and ranges do not wrap (``50-10`` is rejected),
except that a day-of-week range may end on Sunday written as 0 (``FRI-SUN`` is ``5-7``, as in
cronie). A schedule that can never fire (``0 0 31 2 *``) is rejected too.

Day of month and day of week combine as in standard cron: when both are restricted (neither is
exactly ``*``) a day matches if *either* matches, so ``0 0 1 * MON`` fires on the 1st and on every
Monday; when one of them is ``*`` only the other one counts.

Time zones are IANA tz database names (case-sensitive, as zoneinfo reads them). Cloud Scheduler
documents ``Etc/UTC`` as the default and ``utc`` as a spelling of UTC, so the empty string and
``utc`` in any case mean UTC here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .exceptions import InvalidSchedule

__all__ = ["zone"]


# --- parsing ------------------------------------------------------------------------------------

_MONTH_NAMES: Mapping[str, int] = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_DAY_NAMES: Mapping[str, int] = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}
#: The most days each month can have (February in a leap year).
_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_FIELD_SEPARATOR = re.compile(r"[ \t]+")
_ALLOWED_CHARACTERS = re.compile(r"[0-9A-Za-z*,/-]+")
_LAST_SYNTAX = re.compile(r"(?i)(\d*L|L-\d+|LW)")
_NEAREST_WEEKDAY_SYNTAX = re.compile(r"(?i)(\d+W|W\d+)")
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class _Field:
    number: int
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    note: str

    def where(self, text: str) -> str:
        return f"field {self.number} ({self.name}) {text!r}"

    def allowed(self) -> str:
        return f"{self.low}-{self.high}{self.note}"


_FIELDS = (
    _Field(1, "minute", 0, 59, {}, ""),
    _Field(2, "hour", 0, 23, {}, ""),
    _Field(3, "day of month", 1, 31, {}, ""),
    _Field(4, "month", 1, 12, _MONTH_NAMES, " (or the names JAN-DEC)"),
    _Field(5, "day of week", 0, 7, _DAY_NAMES, " (0 and 7 are Sunday; or the names SUN-SAT)"),
)
_MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK = _FIELDS


class _FieldError(Exception):
    """A problem in one field; :func:`_parse` turns it into :class:`InvalidSchedule`."""


def _value(field: _Field, token: str) -> int:
    """One number or name of a field, checked against the field's range."""
    if token.isascii() and token.isdigit():
        number = int(token)
        if not field.low <= number <= field.high:
            raise _FieldError(f"{field.where(token)} is out of range {field.allowed()}")
        return number
    if token.upper() in field.names:
        return field.names[token.upper()]
    raise _FieldError(_unknown_token_message(field, token))


def _unknown_token_message(field: _Field, token: str) -> str:
    """Why ``token`` is not a value, naming the cron dialect it probably comes from."""
    where = field.where(token)
    unsupported = "is not supported by Cloud Scheduler's unix-cron format"
    if field is _DAY_OF_MONTH and _LAST_SYNTAX.fullmatch(token):
        return (
            f"{where}: 'L' (last day of the month) {unsupported}; schedule days 28-31 and check "
            "in the job whether the next day is the 1st"
        )
    if field is _DAY_OF_WEEK and _LAST_SYNTAX.fullmatch(token):
        return (
            f"{where}: 'L' (last such weekday of the month) {unsupported}; schedule the weekday "
            "and check in the job whether it is in the month's last 7 days"
        )
    if field is _DAY_OF_MONTH and _NEAREST_WEEKDAY_SYNTAX.fullmatch(token):
        return f"{where}: 'W' (nearest weekday) {unsupported}; list the days of the month"
    if token.upper() in ("H", "R"):
        return (
            f"{where}: hashed/random values ('H', 'R') are not supported by Cloud Scheduler's "
            "unix-cron format; use a number"
        )
    kind = "a number or a three-letter name" if field.names else "a number"
    return f"{where} is not {kind}; use {field.allowed()}"


def _parse_field(field: _Field, text: str) -> frozenset[int]:
    """The set of values that one field allows (day of week 7 is returned as 0)."""
    if "?" in text:
        raise _FieldError(
            f"{field.where(text)}: '?' (Quartz's 'no specific value') is not supported by Cloud "
            "Scheduler's unix-cron format; use '*'"
        )
    if "#" in text:
        raise _FieldError(
            f"{field.where(text)}: '#' (nth weekday of the month) is not supported by Cloud "
            "Scheduler's unix-cron format; use a day-of-month range with the weekday, e.g. "
            "'0 9 1-7 * *' and check the weekday in the job"
        )
    if not _ALLOWED_CHARACTERS.fullmatch(text):
        bad = next(ch for ch in text if not _ALLOWED_CHARACTERS.fullmatch(ch))
        raise _FieldError(
            f"{field.where(text)} contains {bad!r}; only numbers, names, '*', '-', '/' and ',' "
            "are allowed"
        )
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _FieldError(
                f"{field.where(text)} has an empty list element; remove the extra ','"
            )
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise _FieldError(
                    f"{field.where(item)}: the step {step_text!r} must be a whole number of at "
                    "least 1"
                )
            step = int(step_text)
        if base == "*":
            low, high = field.low, (6 if field is _DAY_OF_WEEK else field.high)
        elif "-" in base:
            first, _, last = base.partition("-")
            if not first or not last or "-" in last:
                raise _FieldError(
                    f"{field.where(item)} is not a range; write it as 'first-last', e.g. "
                    f"'{field.low}-{field.high}'"
                )
            low, high = _value(field, first), _value(field, last)
            if field is _DAY_OF_WEEK and high == 0:
                high = 7  # FRI-SUN is FRI-7, as in cronie
            if low > high:
                raise _FieldError(
                    f"{field.where(item)} is a reversed range ({first} comes after {last}); "
                    f"ranges do not wrap around, write '{first}-{field.high},{field.low}-{last}' "
                    "instead"
                )
        else:
            low = high = _value(field, base)
            if slash:
                raise _FieldError(
                    f"{field.where(item)}: a step must follow a range or '*', write "
                    f"'{base}-{field.high}/{step}' or '*/{step}'"
                )
        values.update(range(low, high + 1, step))
    if field is _DAY_OF_WEEK and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def _render(values: frozenset[int]) -> str:
    """``values`` as croniter input: single numbers and ``a-b`` ranges with ``a < b``.

    croniter reads an equal range (``5-5``) as the whole field, so runs of one value are written
    as the bare number.
    """
    ordered = sorted(values)
    parts: list[str] = []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if value is not None:
            start = previous = value
    return ",".join(parts)


def _never_fires(days: frozenset[int], months: frozenset[int]) -> bool:
    return all(day > _MAX_DAYS[month - 1] for day in days for month in months)


@dataclass(frozen=True)
class _Schedule:
    """A parsed, validated schedule."""

    expression: str
    """The schedule for croniter: numbers, ``a-b`` ranges and ``*`` only."""
    wildcard: bool
    """The minute or hour field starts with ``*`` (Vixie cron's MIN_STAR/HR_STAR)."""
    zone: tzinfo


def _parse(schedule: str, time_zone: str) -> _Schedule:
    text = schedule.strip(" \t")
    if not text:
        raise InvalidSchedule(
            "the schedule is empty; give five fields 'minute hour day-of-month month "
            "day-of-week', e.g. '0 9 * * 1'"
        )
    if text.startswith("@"):
        equivalent = _MACROS.get(text.lower())
        instead = f"'{equivalent}'" if equivalent else "the five fields"
        raise InvalidSchedule(
            f"invalid schedule {schedule!r}: macros such as '@daily' are not part of Cloud "
            f"Scheduler's unix-cron format; write {instead} instead"
        )
    fields = _FIELD_SEPARATOR.split(text)
    if len(fields) != len(_FIELDS):
        extra = ""
        if len(fields) in (6, 7):
            extra = (
                "; Cloud Scheduler has no seconds (or year) field and fires at most once a "
                "minute, so remove the extra field"
            )
        raise InvalidSchedule(
            f"invalid schedule {schedule!r}: expected 5 fields 'minute hour day-of-month month "
            f"day-of-week' separated by spaces, got {len(fields)}{extra}"
        )
    try:
        values = [_parse_field(field, part) for field, part in zip(_FIELDS, fields, strict=True)]
    except _FieldError as exc:
        raise InvalidSchedule(f"invalid schedule {schedule!r}: {exc}") from None

    day_of_month_star = fields[_DAY_OF_MONTH.number - 1] == "*"
    day_of_week_star = fields[_DAY_OF_WEEK.number - 1] == "*"
    days, months = values[_DAY_OF_MONTH.number - 1], values[_MONTH.number - 1]
    if day_of_week_star and not day_of_month_star and _never_fires(days, months):
        raise InvalidSchedule(
            f"invalid schedule {schedule!r} never fires: day(s) of month "
            f"{_render(days)} do not occur in month(s) {_render(months)}"
        )
    parts = []
    for field, part, allowed in zip(_FIELDS, fields, values, strict=True):
        # Only a literal '*' leaves a day field unrestricted (the other one alone then decides);
        # croniter ORs the two day fields unless one of them is '*'.
        if part == "*" or (
            field not in (_DAY_OF_MONTH, _DAY_OF_WEEK)
            and len(allowed) == field.high - field.low + 1
        ):
            parts.append("*")
        else:
            parts.append(_render(allowed))
    return _Schedule(
        expression=" ".join(parts),
        wildcard=any(fields[field.number - 1].startswith("*") for field in (_MINUTE, _HOUR)),
        zone=zone(time_zone),
    )


def zone(time_zone: str) -> tzinfo:
    """The time zone Cloud Scheduler reads ``time_zone`` as; raises :class:`InvalidSchedule`
    for a name it does not know."""
    if time_zone in ("", "Etc/UTC") or time_zone.lower() == "utc":
        # The API documents "For UTC use the string "utc". If a time zone is not specified,
        # the default will be in UTC" and the console's default is Etc/UTC. These need no tz
        # database.
        return UTC
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidSchedule(
            f"unknown time zone {time_zone!r}: use a tz database name such as 'Europe/Paris', "
            "'America/New_York' or 'Etc/UTC' (names are case-sensitive)"
        ) from None
