"""celery_gcp.utils.time gives what celery.utils.time gives, for the helpers projects import."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery.utils import time as celery_time

from celery_gcp import Celery
from celery_gcp.utils import time

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(("factor", "retries", "maximum"),
                         [(1, 0, 600), (1, 3, 600), (2, 5, 600), (3, 12, 600), (0, 4, 10)])
def test_backoff_is_celerys_formula(factor: int, retries: int, maximum: int) -> None:
    assert (time.get_exponential_backoff_interval(factor, retries, maximum)
            == celery_time.get_exponential_backoff_interval(factor, retries, maximum))
    random.seed(7)
    ours = [time.get_exponential_backoff_interval(factor, retries, maximum, full_jitter=True)
            for _ in range(20)]
    random.seed(7)
    theirs = [celery_time.get_exponential_backoff_interval(
        factor=factor, retries=retries, maximum=maximum, full_jitter=True) for _ in range(20)]
    assert ours == theirs


def test_autoretry_backoff_is_the_same_function(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    real = time.get_exponential_backoff_interval

    def spy(*args: Any, **kwargs: Any) -> int:
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr("celery_gcp.worker.run.get_exponential_backoff_interval", spy)
    app = Celery("backoff", broker_url="memory://")
    app.conf.task_always_eager = True

    @app.task(autoretry_for=(ValueError,), retry_backoff=3, max_retries=2, retry_jitter=False)
    def flaky() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        flaky.delay().get()
    assert [c[1]["retries"] for c in calls] == [0, 1, 2]  # the last ends the retries
    assert calls[0][1] == {"factor": 3, "retries": 0, "maximum": 600, "full_jitter": False}


@pytest.mark.parametrize("value", ["100/m", "2/h", "0.5/s", "7", "", None, 0, 4.5])
def test_rate(value: Any) -> None:
    assert time.rate(value) == pytest.approx(celery_time.rate(value))


@pytest.mark.parametrize("secs", [0, 0.5, 1, 59, 60, 61, 3600, 7200, 86400, 172800.25])
def test_humanize_seconds(secs: float) -> None:
    for kwargs in ({}, {"prefix": "in ", "microseconds": True}, {"now": "right now"}):
        assert time.humanize_seconds(secs, **kwargs) == celery_time.humanize_seconds(
            secs, **kwargs)  # type: ignore[arg-type]


def test_zones_and_awareness_match_celery() -> None:
    naive = datetime(2026, 3, 29, 1, 30)
    aware = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    ambiguous = datetime(2026, 10, 25, 2, 30)  # occurs twice in Paris
    for dt in (naive, ambiguous):
        assert time.make_aware(dt, PARIS) == celery_time.make_aware(dt, PARIS)
        assert time.make_aware(dt, PARIS).utcoffset() == celery_time.make_aware(
            dt, PARIS).utcoffset()
        assert time.to_utc(dt) == celery_time.to_utc(dt)
        assert time.maybe_make_aware(dt) == celery_time.maybe_make_aware(dt)
        assert time.maybe_make_aware(dt, PARIS) == celery_time.maybe_make_aware(dt, PARIS)
    for dt in (naive, aware, aware.astimezone(PARIS)):
        assert time.localize(dt, PARIS) == celery_time.localize(dt, PARIS)
        assert time.is_naive(dt) is celery_time.is_naive(dt)
        assert time.timezone.to_local(dt, PARIS) == celery_time.timezone.to_local(dt, PARIS)
    assert time.timezone.utc.utcoffset(aware) == timedelta(0)
    assert time.timezone.get_timezone("Europe/Paris") == PARIS
    assert time.timezone.local.utcoffset(aware) == aware.astimezone().utcoffset()


def test_intervals_and_parsing_match_celery() -> None:
    start = datetime(2026, 1, 1, 10, 15, 30, tzinfo=UTC)
    now = datetime(2026, 1, 1, 10, 20, tzinfo=UTC)
    for delta in (timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=2),
                  timedelta(days=1)):
        assert time.delta_resolution(start, delta) == celery_time.delta_resolution(start, delta)
        for relative in (False, True):
            assert time.remaining(start, delta, now, relative) == celery_time.remaining(
                start, delta, now, relative)
    assert time.maybe_timedelta(30) == celery_time.maybe_timedelta(30) == timedelta(seconds=30)
    assert time.maybe_timedelta(start) is start
    for text in ("2026-01-01T10:15:30+00:00", "2026-01-01T10:15:30", None, ""):
        assert time.maybe_iso8601(text) == celery_time.maybe_iso8601(text)
    assert time.weekday("Monday") == celery_time.weekday("Monday") == 1
    assert time.yearmonth("may") == celery_time.yearmonth("may") == 5
    day = date(2026, 2, 10)
    forward = {"month": 2, "day": 31, "weekday": 2, "weeks": 1}
    assert day + time.ffwd(**forward) == day + celery_time.ffwd(**forward)
    assert time.utcoffset() == celery_time.utcoffset()
    assert time.adjust_timestamp(1000.0, 2) == celery_time.adjust_timestamp(1000.0, 2)
    assert time.subtract_datetimes(now, start.replace(tzinfo=None)) == (
        celery_time.subtract_datetimes(now, start.replace(tzinfo=None)))
    paris = datetime(2026, 3, 29, 1, 30, tzinfo=PARIS)  # an hour before DST starts
    assert time.add_seconds_to_datetime(paris, 3600) == celery_time.add_seconds_to_datetime(
        paris, 3600)
    assert set(celery_time.__all__) - {"LocalTimezone"} <= set(time.__all__)
