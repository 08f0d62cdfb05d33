"""``celery_gcp.schedules.crontab_parser`` and ``ParseException``: Celery's parser of one crontab
field, checked on Celery's own cases and against Celery on generated fields."""

from __future__ import annotations

import random

import pytest
from celery import schedules as celery_schedules

from celery_gcp.schedules import ParseException, crontab, crontab_parser


def test_parse_star() -> None:
    assert crontab_parser(24).parse("*") == set(range(24))
    assert crontab_parser(60).parse("*") == set(range(60))
    assert crontab_parser(7).parse("*") == set(range(7))
    assert crontab_parser(31, 1).parse("*") == set(range(1, 32))
    assert crontab_parser(12, 1).parse("*") == set(range(1, 13))


def test_parse_ranges_and_their_wrap() -> None:
    assert crontab_parser(60).parse("1-10") == set(range(1, 11))
    assert crontab_parser(24).parse("0-20") == set(range(21))
    assert crontab_parser().parse("2-10") == set(range(2, 11))
    assert crontab_parser(60, 1).parse("1-10") == set(range(1, 11))
    assert crontab_parser(12).parse("11-1") == {11, 0, 1}
    assert crontab_parser(60, 1).parse("2-1") == set(range(1, 61))


def test_parse_groups_and_steps() -> None:
    assert crontab_parser().parse("1,2,3,4") == {1, 2, 3, 4}
    assert crontab_parser().parse("0,15,30,45") == {0, 15, 30, 45}
    assert crontab_parser(min_=1).parse("1,2,3,4") == {1, 2, 3, 4}
    assert crontab_parser(8).parse("*/2") == {0, 2, 4, 6}
    assert crontab_parser().parse("*/3") == set(range(0, 60, 3))
    assert crontab_parser(8, 1).parse("*/2") == {1, 3, 5, 7}
    assert crontab_parser(min_=1).parse("*/2") == set(range(1, 61, 2))
    assert crontab_parser().parse("2-9/5") == {2, 7}
    assert crontab_parser(min_=1).parse("55-5/3") == {55, 58, 1, 4}
    assert crontab_parser().parse("2-11/5,3") == {2, 3, 7}
    assert crontab_parser().parse("2-4/3,*/5,0-21/4") == {
        0, 2, 4, 5, 8, 10, 12, 15, 16, 20, 25, 30, 35, 40, 45, 50, 55}
    assert crontab_parser(min_=1).parse("2-4/3,*/5,1-21/4") == {
        1, 2, 5, 6, 9, 11, 13, 16, 17, 21, 26, 31, 36, 41, 46, 51, 56}


def test_parse_names_as_celery() -> None:
    assert crontab_parser(7).parse("mon-fri") == {1, 2, 3, 4, 5}
    assert crontab_parser(7).parse("tues,Thurs,sunday") == {0, 2, 4}
    assert crontab_parser(12, 1).parse("sept-nov") == {9, 10, 11}
    assert crontab_parser(12, 1).parse("jan") == crontab_parser(7).parse("mon") == {1}


@pytest.mark.parametrize("spec", ["", "1,,2", "*/", "1-5/", "-20", "5,-3"])
def test_parse_exception_for_empty_parts_steps_and_negative_numbers(spec: str) -> None:
    with pytest.raises(ParseException) as info:
        crontab_parser(60).parse(spec)
    assert f"crontab_parser(60, 0).parse({spec!r})" in str(info.value)
    assert crontab_parser.ParseException is ParseException


@pytest.mark.parametrize(("parser", "spec"), [
    (crontab_parser(12, 1), "0"), (crontab_parser(24, 1), "12-0"), (crontab_parser(1), "1"),
    (crontab_parser(60), "61-0"), (crontab_parser(7), "funday"), (crontab_parser(1), "jan"),
    (crontab_parser(60), "5/15"), (crontab_parser(60), "*/0"), (crontab_parser(60), "*/x"),
])
def test_value_error_for_values_out_of_range_or_unknown(parser: crontab_parser,
                                                        spec: str) -> None:
    with pytest.raises(ValueError) as info:
        parser.parse(spec)
    assert not isinstance(info.value, ParseException)
    assert crontab_parser(min_=1).parse("1") == {1}
    assert crontab_parser(1).parse("0") == {0}


def test_crontab_fields_raise_parse_exception_as_celery() -> None:
    for kwargs in ({"minute": ""}, {"hour": "1,,2"}, {"day_of_week": "*/"},
                   {"day_of_month": "-3"}):
        with pytest.raises(ParseException):
            crontab(**kwargs)
        with pytest.raises(celery_schedules.ParseException):
            celery_schedules.crontab(**kwargs)


def _generated_field(rng: random.Random) -> str:
    def value() -> str:
        return rng.choice([str(rng.randint(0, 70)), rng.choice(
            ["sun", "mon", "tues", "friday", "jan", "sept", "dec", "march"])])

    def element() -> str:
        shape = rng.randrange(7)
        step = rng.choice(["", str(rng.randint(0, 12)), str(rng.randint(1, 5))])
        return ["*", f"*/{step}", value(), f"{value()}-{value()}",
                f"{value()}-{value()}/{step}", "", f"-{rng.randint(0, 9)}"][shape]

    return ",".join(element() for _ in range(rng.choice([1, 1, 2, 3])))


def _outcome(parser: object, error: type[Exception], spec: str) -> object:
    try:
        return parser.parse(spec)  # type: ignore[attr-defined]
    except error:
        return "ParseException"
    except ValueError:
        return "ValueError"


def test_crontab_parser_agrees_with_celery_on_generated_fields() -> None:
    rng = random.Random(17)
    for _ in range(3000):
        spec = _generated_field(rng)
        max_, min_ = rng.choice([(60, 0), (24, 0), (7, 0), (31, 1), (12, 1)])
        ours = _outcome(crontab_parser(max_, min_), ParseException, spec)
        theirs = _outcome(celery_schedules.crontab_parser(max_, min_),
                          celery_schedules.ParseException, spec)
        assert ours == theirs, (spec, max_, min_)


@pytest.mark.parametrize("spec", ["1-5-7", "jan 59", "sundayx", "+5", "1 - 5"])
def test_text_celery_reads_partly_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="crontab_parser"):
        crontab_parser(60).parse(spec)
