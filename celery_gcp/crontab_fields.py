"""Celery's crontab field syntax: what ``crontab(...)`` fields and :class:`crontab_parser` take.

A field is ``*``, a number, a name (``mon``, ``tues``, ``monday``; ``jan``, ``sept``), a range
``a-b`` (wrapping past the end: ``fri-mon``), a step ``*/s`` or ``a-b/s``, or a list of those
separated by commas. As in Celery, an empty element or step and a negative number raise
:class:`~celery_gcp.exceptions.ParseException`, and a value out of range or a word that is not a
number or name raises ``ValueError``. Text Celery reads by ignoring what follows a valid start
(``1-5-7`` as ``1-5``, ``jan 59`` as ``jan``) is refused here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from .exceptions import ParseException

__all__ = ["ParseException", "crontab_parser"]

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
#: The most days each month can have (February 29 counts: it exists in leap years).
MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class Field:
    """One crontab field: its values ``low..high`` and the names it takes."""

    name: str
    low: int
    high: int
    names: Mapping[str, int]
    hint: str
    #: How errors name what was given, with ``{given!r}`` (default: ``crontab <name>=...``).
    where: str = ""

    def error(self, given: object, problem: str,
              kind: type[ValueError] = ValueError) -> ValueError:
        """The error for ``given``: what is wrong, and what the field takes."""
        where = (self.where or f"crontab {self.name}={{given!r}}").format(given=given)
        return kind(f"{where} {problem}; use {self.low}-{self.high}{self.hint}")


def names(words: Iterable[str], start: int) -> dict[str, int]:
    """Each word's number, by the word and by every prefix of it of 3 letters or more
    (``tue``, ``tues``, ``tuesday``), as Celery reads names by their first 3 letters."""
    return {word[:end]: n for n, word in enumerate(words, start)
            for end in range(3, len(word) + 1)}


DAY_NAMES = names(DAYS, 0)
MONTH_NAMES = names(MONTHS, 1)
MINUTE = Field("minute", 0, 59, {}, "")
HOUR = Field("hour", 0, 23, {}, "")
DAY_OF_WEEK = Field("day_of_week", 0, 6, DAY_NAMES,
                    " (0 is Sunday) or the names sun-sat / sunday-saturday")
DAY_OF_MONTH = Field("day_of_month", 1, 31, {}, "")
MONTH_OF_YEAR = Field("month_of_year", 1, 12, MONTH_NAMES,
                      " or the names jan-dec / january-december")


def _value(field: Field, token: str, given: object) -> int:
    if token.isascii() and token.isdigit():
        value = int(token)
    elif token.lower() in field.names:
        value = field.names[token.lower()]
    else:
        kind = "a number or a name" if field.names else "a number"
        raise field.error(given, f"has {token!r}, which is not {kind}")
    if not field.low <= value <= field.high:
        raise field.error(given, f"has {token} out of range")
    return value


def parse_text(field: Field, text: str) -> set[int]:
    """The values of a field written as text."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise field.error(text, "has an empty element", ParseException)
        if item.startswith("-"):
            raise field.error(text, f"has the negative number {item!r}", ParseException)
        base, slash, step_text = item.strip().partition("/")
        step = 1
        if slash:
            if base != "*" and "-" not in base:
                raise field.error(text, f"steps {base!r}: a step follows '*' or a range 'a-b'")
            if not step_text:
                raise field.error(text, f"has an empty step after {base!r}/", ParseException)
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise field.error(text, f"has the step {step_text!r}, not a whole number >= 1")
            step = int(step_text)
        if base == "*":
            run = list(range(field.low, field.high + 1))
        elif "-" in base:
            first, _, last = base.partition("-")
            a, b = _value(field, first, text), _value(field, last, text)
            # Ranges wrap around the end of the field: 'fri-mon' is fri, sat, sun, mon.
            run = list(range(a, b + 1)) if a <= b else [*range(a, field.high + 1),
                                                        *range(field.low, b + 1)]
        else:
            run = [_value(field, base, text)]
        values.update(run[::step])
    return values


def parse_field(field: Field, spec: object) -> set[int]:
    """A crontab field given as an int, a string, or an iterable of those."""
    if isinstance(spec, str):
        return parse_text(field, spec)
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not field.low <= spec <= field.high:
            raise field.error(spec, "is out of range")
        return {spec}
    if isinstance(spec, Iterable):
        values: set[int] = set()
        for item in spec:
            if not isinstance(item, int | str) or isinstance(item, bool):
                raise TypeError(f"crontab {field.name}: {item!r} is not an int or a string")
            values |= parse_field(field, item)
        return values
    raise TypeError(
        f"crontab {field.name}={spec!r}: give an int, a string or an iterable of them"
    )


def compress(values: set[int], field: Field) -> str:
    """``values`` as a cron field: ``*``, ``a-b/s``, or a list of numbers and ``a-b`` runs.

    Never ``*/s``: a field starting with ``*`` changes Vixie cron's day OR and its daylight
    saving rules, so ``*`` is only written for the full field.
    """
    ordered = sorted(values)
    if len(ordered) == field.high - field.low + 1:
        return "*"
    runs: list[list[int]] = []
    for value in ordered:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    listed = ",".join(f"{r[0]}-{r[-1]}" if len(r) >= 3 else ",".join(map(str, r)) for r in runs)
    steps = {b - a for a, b in itertools.pairwise(ordered)}
    if len(ordered) >= 3 and len(steps) == 1 and (step := steps.pop()) > 1:
        stepped = f"{ordered[0]}-{ordered[-1]}/{step}"
        return min(listed, stepped, key=len)
    return listed


def keep(spec: object) -> object:
    """``spec``, with a one-shot iterator turned into a list so repr can show it after parsing."""
    return list(spec) if isinstance(spec, Iterator) else spec


def as_written(spec: object) -> str:
    """A field as the user gave it, for repr: ``*/15``, ``5``, ``5,42``."""
    if isinstance(spec, set | frozenset):
        spec = sorted(spec, key=str)
    if isinstance(spec, Iterable) and not isinstance(spec, str):
        return ",".join(map(str, spec))
    return str(spec)


class crontab_parser:
    """Celery's parser of one crontab field: values ``min_`` to ``min_ + max_ - 1``.

    ``crontab_parser(60).parse("*/15") == {0, 15, 30, 45}``; ``crontab_parser(31, 1)`` reads
    days of the month, ``crontab_parser(12, 1)`` months. As in Celery, every parser takes both
    month and weekday names, each as its number (``jan`` is 1, ``sun`` is 0).
    """

    ParseException = ParseException

    def __init__(self, max_: int = 60, min_: int = 0) -> None:
        self.max_ = max_
        self.min_ = min_
        self._field = Field(
            "value", min_, min_ + max_ - 1, {**DAY_NAMES, **MONTH_NAMES},
            " or the names sun-sat / jan-dec",
            where=f"crontab_parser({max_}, {min_}).parse({{given!r}})")

    def parse(self, spec: str) -> set[int]:
        """The values ``spec`` stands for; raises :class:`ParseException` or ``ValueError``."""
        if not isinstance(spec, str):
            raise TypeError(f"crontab_parser.parse({spec!r}): give the field as a string")
        return parse_text(self._field, spec)
