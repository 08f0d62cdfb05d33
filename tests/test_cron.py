"""Cloud Scheduler schedule semantics: unix-cron fields, time zones and daylight saving time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from celery_gcp.cron import InvalidSchedule, fires_between, next_fire, validate

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC datetime: ``utc(2025, 3, 30, 1, 0)``."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def fires(schedule: str, time_zone: str, start: datetime, end: datetime) -> list[datetime]:
    return list(fires_between(schedule, time_zone, start, end))


# --- fields -------------------------------------------------------------------------------------


def test_every_fifteen_minutes() -> None:
    assert fires("*/15 * * * *", "Etc/UTC", utc(2025, 6, 2, 10, 7), utc(2025, 6, 2, 11, 0)) == [
        utc(2025, 6, 2, 10, 15),
        utc(2025, 6, 2, 10, 30),
        utc(2025, 6, 2, 10, 45),
        utc(2025, 6, 2, 11, 0),
    ]


def test_every_minute_is_the_finest_granularity() -> None:
    assert next_fire("* * * * *", "Etc/UTC", utc(2025, 6, 2, 10, 7)) == utc(2025, 6, 2, 10, 8)
    seconds_in = datetime(2025, 6, 2, 10, 7, 59, 999999, tzinfo=UTC)
    assert next_fire("* * * * *", "Etc/UTC", seconds_in) == utc(2025, 6, 2, 10, 8)


def test_ranges_lists_and_steps() -> None:
    start, end = utc(2025, 6, 2, 0, 0), utc(2025, 6, 2, 1, 0)
    odd = fires("1-30/2 * * * *", "Etc/UTC", start, end)
    assert [fire.minute for fire in odd] == list(range(1, 30, 2))
    mixed = fires("5,10-12,50-59/5 * * * *", "Etc/UTC", start, end)
    assert [fire.minute for fire in mixed] == [5, 10, 11, 12, 50, 55]
    hours = fires("0 */6 * * *", "Etc/UTC", utc(2025, 6, 2, 0, 0), utc(2025, 6, 3, 0, 0))
    assert [fire.hour for fire in hours] == [6, 12, 18, 0]


def test_equal_range_is_one_value() -> None:
    # croniter alone reads "MON-MON" (and "7-7") as the whole field.
    start, end = utc(2025, 6, 1, 0, 0), utc(2025, 6, 15, 0, 0)
    assert fires("0 0 * * MON-MON", "Etc/UTC", start, end) == [utc(2025, 6, 2), utc(2025, 6, 9)]
    assert fires("0 0 * * 7-7", "Etc/UTC", start, end) == [utc(2025, 6, 8), utc(2025, 6, 15)]
    assert fires("0 0 * * 1-1/3", "Etc/UTC", start, end) == [utc(2025, 6, 2), utc(2025, 6, 9)]


def test_names_are_case_insensitive() -> None:
    start, end = utc(2025, 1, 1), utc(2026, 1, 1)
    months = fires("0 0 1 jan,JUL *", "Etc/UTC", start, end)
    assert months == [utc(2025, 7, 1), utc(2026, 1, 1)]
    quarterly = fires("0 0 1 Jan-Dec/3 *", "Etc/UTC", start, end)
    assert [fire.month for fire in quarterly] == [4, 7, 10, 1]
    week = fires("0 9 * * mon-Fri", "Etc/UTC", utc(2025, 6, 1), utc(2025, 6, 8))
    assert [fire.day for fire in week] == [2, 3, 4, 5, 6]
    assert fires("0 9 * * sat", "Etc/UTC", utc(2025, 6, 1), utc(2025, 6, 8)) == [utc(2025, 6, 7, 9)]


def test_seven_is_sunday() -> None:
    start, end = utc(2025, 6, 1), utc(2025, 6, 16)
    sundays = [utc(2025, 6, 1, 12), utc(2025, 6, 8, 12), utc(2025, 6, 15, 12)]
    assert fires("0 12 * * 7", "Etc/UTC", start, end) == sundays
    assert fires("0 12 * * 0", "Etc/UTC", start, end) == sundays
    assert fires("0 12 * * SUN", "Etc/UTC", start, end) == sundays
    weekend = fires("0 12 * * 6-7", "Etc/UTC", start, end)
    assert [fire.day for fire in weekend] == [1, 7, 8, 14, 15]
    assert fires("0 12 * * SAT-SUN", "Etc/UTC", start, end) == weekend  # as in cronie
    assert fires("0 12 * * 0-7", "Etc/UTC", start, end) == fires(
        "0 12 * * *", "Etc/UTC", start, end
    )


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # 2025-01-01 is a Wednesday: the 1st of each month, plus every Sunday.
    either = fires("0 0 1 * 0", "Etc/UTC", utc(2024, 12, 31), utc(2025, 2, 3))
    assert either == [
        utc(2025, 1, 1),
        utc(2025, 1, 5),
        utc(2025, 1, 12),
        utc(2025, 1, 19),
        utc(2025, 1, 26),
        utc(2025, 2, 1),
        utc(2025, 2, 2),
    ]
    # With the other day field '*', only the restricted one counts.
    firsts = fires("0 0 1 * *", "Etc/UTC", utc(2024, 12, 31), utc(2025, 2, 3))
    assert firsts == [utc(2025, 1, 1), utc(2025, 2, 1)]
    sundays = fires("0 0 * * 0", "Etc/UTC", utc(2024, 12, 31), utc(2025, 1, 13))
    assert sundays == [utc(2025, 1, 5), utc(2025, 1, 12)]
    # Restricted means "not literally '*'": '*/5' (Sunday and Friday) is ORed with the 13th.
    # (Vixie cron would AND them, because the field starts with '*': only Friday the 13th.)
    either = fires("0 0 13 * */5", "Etc/UTC", utc(2025, 6, 1), utc(2025, 6, 21))
    assert [fire.day for fire in either] == [6, 8, 13, 15, 20]


def test_february_29th_fires_in_leap_years() -> None:
    assert next_fire("0 0 29 2 *", "Etc/UTC", utc(2025, 1, 1)) == utc(2028, 2, 29)


# --- time zones and daylight saving time --------------------------------------------------------


def test_weekdays_at_nine_in_paris_across_the_march_change() -> None:
    # DST starts on Sunday 2025-03-30: 09:00 is 08:00 UTC on Friday, 07:00 UTC on Monday.
    got = fires("0 9 * * MON-FRI", "Europe/Paris", utc(2025, 3, 27, 12), utc(2025, 4, 1, 12))
    assert got == [utc(2025, 3, 28, 8), utc(2025, 3, 31, 7), utc(2025, 4, 1, 7)]
    assert all(fire.astimezone(PARIS).hour == 9 for fire in got)


def test_weekdays_at_nine_in_paris_across_the_october_change() -> None:
    # DST ends on Sunday 2025-10-26: 09:00 is 07:00 UTC on Friday, 08:00 UTC on Monday.
    got = fires("0 9 * * MON-FRI", "Europe/Paris", utc(2025, 10, 23, 12), utc(2025, 10, 28, 12))
    assert got == [utc(2025, 10, 24, 7), utc(2025, 10, 27, 8), utc(2025, 10, 28, 8)]


def test_spring_forward_gap_fixed_time_runs_at_the_transition_paris() -> None:
    # 2025-03-30 02:00 CET -> 03:00 CEST (01:00 UTC): 02:30 does not exist. Vixie cron runs the
    # skipped fixed-time job immediately, i.e. at 03:00 CEST.
    got = fires("30 2 * * *", "Europe/Paris", utc(2025, 3, 28, 12), utc(2025, 3, 31, 12))
    assert got == [utc(2025, 3, 29, 1, 30), utc(2025, 3, 30, 1, 0), utc(2025, 3, 31, 0, 30)]
    assert got[1].astimezone(PARIS).isoformat() == "2025-03-30T03:00:00+02:00"


def test_spring_forward_gap_fixed_time_runs_at_the_transition_new_york() -> None:
    # 2025-03-09 02:00 EST -> 03:00 EDT (07:00 UTC).
    got = fires("30 2 * * *", "America/New_York", utc(2025, 3, 7, 12), utc(2025, 3, 10, 12))
    assert got == [utc(2025, 3, 8, 7, 30), utc(2025, 3, 9, 7, 0), utc(2025, 3, 10, 6, 30)]
    assert got[1].astimezone(NEW_YORK).isoformat() == "2025-03-09T03:00:00-04:00"


def test_spring_forward_gap_runs_a_job_once_even_if_it_also_matches_after_the_gap() -> None:
    got = fires("0,30 2,3 * * *", "America/New_York", utc(2025, 3, 9, 5), utc(2025, 3, 9, 9))
    assert got == [utc(2025, 3, 9, 7, 0), utc(2025, 3, 9, 7, 30)]


def test_spring_forward_gap_wildcard_schedules_skip_the_missing_minutes() -> None:
    # '*' in the minute or hour field: "run based on the new time immediately" (no catch-up).
    hourly = fires("30 * * * *", "Europe/Paris", utc(2025, 3, 29, 23), utc(2025, 3, 30, 3))
    assert hourly == [
        utc(2025, 3, 29, 23, 30),
        utc(2025, 3, 30, 0, 30),
        utc(2025, 3, 30, 1, 30),
        utc(2025, 3, 30, 2, 30),
    ]
    assert [fire.astimezone(PARIS).hour for fire in hourly] == [0, 1, 3, 4]  # no 02:30
    start = utc(2025, 3, 30, 0, 30)
    quarter = fires("*/15 * * * *", "Europe/Paris", start, start + timedelta(hours=1))
    assert [fire - start for fire in quarter] == [
        timedelta(minutes=15 * n) for n in range(1, 5)
    ]


def test_fall_back_overlap_fixed_time_runs_once_at_the_first_occurrence_paris() -> None:
    # 2025-10-26 03:00 CEST -> 02:00 CET (01:00 UTC): 02:30 happens at 00:30 and 01:30 UTC.
    # Vixie cron: "if time has moved backward, care is taken to avoid running jobs twice".
    got = fires("30 2 * * *", "Europe/Paris", utc(2025, 10, 24, 12), utc(2025, 10, 27, 12))
    assert got == [utc(2025, 10, 25, 0, 30), utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)]
    assert got[1].astimezone(PARIS).isoformat() == "2025-10-26T02:30:00+02:00"


def test_fall_back_in_new_york() -> None:
    # 2025-11-02 02:00 EDT -> 01:00 EST (06:00 UTC): 01:xx repeats, 02:30 happens once.
    start, end = utc(2025, 11, 1, 12), utc(2025, 11, 3, 12)
    at_two_thirty = fires("30 2 * * *", "America/New_York", start, end)
    assert at_two_thirty == [utc(2025, 11, 2, 7, 30), utc(2025, 11, 3, 7, 30)]
    at_one_thirty = fires("30 1 * * *", "America/New_York", start, end)
    assert at_one_thirty == [utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30)]
    assert at_one_thirty[0].astimezone(NEW_YORK).isoformat() == "2025-11-02T01:30:00-04:00"


def test_fall_back_overlap_wildcard_schedules_run_in_both_passes() -> None:
    hourly = fires("30 * * * *", "Europe/Paris", utc(2025, 10, 25, 23), utc(2025, 10, 26, 3))
    assert hourly == [
        utc(2025, 10, 25, 23, 30),  # 01:30 CEST
        utc(2025, 10, 26, 0, 30),  # 02:30 CEST
        utc(2025, 10, 26, 1, 30),  # 02:30 CET
        utc(2025, 10, 26, 2, 30),  # 03:30 CET
    ]
    half_hours = fires("*/30 * * * *", "Europe/Paris", utc(2025, 10, 25, 23), utc(2025, 10, 26, 2))
    assert half_hours == [utc(2025, 10, 25, 23, 0) + timedelta(minutes=30 * n) for n in range(1, 7)]


def test_next_fire_from_inside_the_repeated_hour() -> None:
    first_pass = datetime(2025, 10, 26, 2, 30, tzinfo=PARIS)  # fold=0: 00:30 UTC
    assert next_fire("15 * * * *", "Europe/Paris", first_pass) == utc(2025, 10, 26, 1, 15)
    assert next_fire("15 2 * * *", "Europe/Paris", first_pass) == utc(2025, 10, 27, 1, 15)
    second_pass = datetime(2025, 10, 26, 2, 10, fold=1, tzinfo=PARIS)  # 01:10 UTC
    assert next_fire("15 * * * *", "Europe/Paris", second_pass) == utc(2025, 10, 26, 1, 15)
    assert next_fire("15 2 * * *", "Europe/Paris", second_pass) == utc(2025, 10, 27, 1, 15)


def test_half_hour_transition_lord_howe() -> None:
    # Australia/Lord_Howe moves 02:00 +10:30 -> 02:30 +11:00 on 2025-10-05 (15:30 UTC on the 4th).
    fixed = fires("15 2 * * *", "Australia/Lord_Howe", utc(2025, 10, 4, 0), utc(2025, 10, 5, 12))
    assert fixed == [utc(2025, 10, 4, 15, 30)]
    start, end = utc(2025, 10, 4, 15), utc(2025, 10, 4, 16)
    wildcard = fires("*/20 * * * *", "Australia/Lord_Howe", start, end)
    # 01:40 +10:30, then 02:00 and 02:20 do not exist, then 02:40 and 03:00 +11:00.
    assert wildcard == [utc(2025, 10, 4, 15, 10), utc(2025, 10, 4, 15, 40), end]


def test_a_jump_of_more_than_three_hours_is_a_clock_correction() -> None:
    # Samoa skipped 2011-12-30 (UTC-10 -> UTC+14). Vixie cron: "Time changes of more than 3
    # hours are considered to be corrections to the clock or timezone": no catch-up run.
    got = fires("0 12 * * *", "Pacific/Apia", utc(2011, 12, 29, 0), utc(2011, 12, 31, 12))
    assert [fire.astimezone(ZoneInfo("Pacific/Apia")).day for fire in got] == [29, 31]
    assert got == [utc(2011, 12, 29, 22), utc(2011, 12, 30, 22)]


def test_next_fire_is_strictly_after() -> None:
    nine = utc(2025, 6, 2, 7)  # 09:00 in Paris, a Monday
    assert next_fire("0 9 * * MON-FRI", "Europe/Paris", nine - timedelta(microseconds=1)) == nine
    assert next_fire("0 9 * * MON-FRI", "Europe/Paris", nine) == utc(2025, 6, 3, 7)
    transition = utc(2025, 3, 30, 1)  # the catch-up fire of a skipped 02:30
    assert next_fire("30 2 * * *", "Europe/Paris", transition) == utc(2025, 3, 31, 0, 30)


def test_after_in_another_zone_and_result_in_utc() -> None:
    after = datetime(2025, 6, 2, 16, 0, tzinfo=TOKYO)  # 07:00 UTC, 09:00 Paris
    fire = next_fire("0 9 * * *", "Europe/Paris", after)
    assert fire == utc(2025, 6, 3, 7)
    assert fire.tzinfo is UTC
    before = datetime(2025, 6, 2, 2, 59, tzinfo=NEW_YORK)  # 06:59 UTC
    assert next_fire("0 9 * * *", "Europe/Paris", before) == utc(2025, 6, 2, 7)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire("* * * * *", "Etc/UTC", datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        fires_between("* * * * *", "Etc/UTC", utc(2025, 1, 1), datetime(2025, 1, 2))


def test_fires_between_is_start_exclusive_end_inclusive() -> None:
    start, middle, end = utc(2025, 6, 2, 10), utc(2025, 6, 2, 10, 30), utc(2025, 6, 2, 11)
    both = fires("*/15 * * * *", "Etc/UTC", start, middle)
    both += fires("*/15 * * * *", "Etc/UTC", middle, end)
    assert both == fires("*/15 * * * *", "Etc/UTC", start, end)
    assert both[0] == utc(2025, 6, 2, 10, 15)
    assert both[-1] == end
    assert fires("*/15 * * * *", "Etc/UTC", end, start) == []


def test_utc_spellings() -> None:
    after = utc(2025, 6, 2, 10, 7)
    for zone in ("Etc/UTC", "UTC", "utc", ""):
        validate("0 * * * *", zone)
        assert next_fire("0 * * * *", zone, after) == utc(2025, 6, 2, 11)


# --- invalid schedules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("* * * *", "expected 5 fields 'minute hour day-of-month month day-of-week'"),
        ("0 * * * * *", "got 6; Cloud Scheduler has no seconds (or year) field"),
        ("0 0 12 * * ? 2025", "got 7"),
        ("", "the schedule is empty"),
        ("60 * * * *", "field 1 (minute) '60' is out of range 0-59"),
        ("0 24 * * *", "field 2 (hour) '24' is out of range 0-23"),
        ("0 0 0 * *", "field 3 (day of month) '0' is out of range 1-31"),
        ("0 0 * 13 *", "field 4 (month) '13' is out of range 1-12 (or the names JAN-DEC)"),
        ("* * * * 8", "field 5 (day of week) '8' is out of range 0-7"),
        ("0 0 L * *", "'L' (last day of the month) is not supported"),
        ("0 0 * * 5L", "field 5 (day of week) '5L': 'L'"),
        ("0 0 15W * *", "'W' (nearest weekday) is not supported"),
        ("0 0 * * 1#2", "'#' (nth weekday of the month) is not supported"),
        ("0 0 ? * MON", "field 3 (day of month) '?': '?'"),
        ("H * * * *", "hashed/random values"),
        ("@daily", "write '0 0 * * *' instead"),
        ("*/0 * * * *", "the step '0' must be a whole number of at least 1"),
        ("5/15 * * * *", "a step must follow a range or '*', write '5-59/15' or '*/15'"),
        ("30-10 * * * *", "reversed range (30 comes after 10)"),
        ("0 0 * * MONDAY", "'MONDAY' is not a number or a three-letter name"),
        ("0 0 * JANUARY *", "'JANUARY' is not a number or a three-letter name"),
        ("MON * * * *", "field 1 (minute) 'MON' is not a number; use 0-59"),
        ("1,,2 * * * *", "has an empty list element"),
        ("0 9 * * 1-5-6", "is not a range"),
        ("0 0 31 2 *", "never fires: day(s) of month 31 do not occur in month(s) 2"),
        ("0 0 31 APR,JUN,SEP,NOV *", "never fires"),
    ],
)
def test_invalid_schedules(schedule: str, message: str) -> None:
    with pytest.raises(InvalidSchedule, match=re.escape(message)):
        validate(schedule, "Etc/UTC")
    with pytest.raises(InvalidSchedule, match=re.escape(message)):
        next_fire(schedule, "Etc/UTC", utc(2025, 1, 1))


@pytest.mark.parametrize(
    "zone", ["Mars/Base", "europe/paris", "America", "../etc/passwd", "zone.tab", " UTC"]
)
def test_unknown_time_zones(zone: str) -> None:
    with pytest.raises(InvalidSchedule, match=f"unknown time zone {re.escape(repr(zone))}: use"):
        validate("0 9 * * *", zone)


def test_invalid_schedule_is_a_value_error() -> None:
    assert issubclass(InvalidSchedule, ValueError)
    with pytest.raises(ValueError, match="out of range"):
        fires_between("61 * * * *", "Etc/UTC", utc(2025, 1, 1), utc(2025, 1, 2))


def test_possible_dates_are_not_rejected() -> None:
    # The 31st only in months that have one; the 30th or a Sunday in February (OR).
    validate("0 0 31 1-12 *", "Etc/UTC")
    validate("0 0 30 2 SUN", "Etc/UTC")
    assert next_fire("0 0 30 2 SUN", "Etc/UTC", utc(2025, 2, 1)) == utc(2025, 2, 2)
