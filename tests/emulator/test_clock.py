"""The manual clock: waiters wake when it is advanced, and early-woken waiters do not pile up."""

from __future__ import annotations

import asyncio

import pytest

from celery_gcp.emulator import Clock, ManualClock
from celery_gcp.emulator.clock import Expired


async def test_sleepers_wake_when_the_clock_reaches_them() -> None:
    clock = ManualClock(start=1000.0)
    woke: list[float] = []

    async def sleeper(deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append(deadline)

    tasks = [asyncio.create_task(sleeper(d)) for d in (1010.0, 1005.0, 1020.0)]
    await asyncio.sleep(0)
    clock.advance(10)
    await asyncio.wait_for(asyncio.gather(*tasks[:2]), timeout=5)
    assert sorted(woke) == [1005.0, 1010.0]
    assert not tasks[2].done()
    clock.set(1020.0)
    await asyncio.wait_for(tasks[2], timeout=5)
    clock.set(500.0)  # never backwards
    assert clock.now() == 1020.0


async def test_a_wake_event_ends_the_sleep_and_abandoned_waiters_are_dropped() -> None:
    clock = ManualClock(start=0.0)
    for _ in range(500):
        wake = asyncio.Event()
        wake.set()
        sleep = asyncio.create_task(clock.sleep_until(3600.0, wake))
        await asyncio.wait_for(sleep, timeout=5)
    assert len(clock._waiters) < 250


def test_a_clock_outlives_the_loop_of_its_waiters() -> None:
    # A test restarts an emulator on the same clock: the first one's waiters were cancelled
    # with its loop, which is closed by the time the clock moves.
    clock = ManualClock(start=0.0)

    async def abandon() -> None:
        sleep = asyncio.create_task(clock.sleep_until(60.0, asyncio.Event()))
        await asyncio.sleep(0)
        sleep.cancel()

    asyncio.run(abandon())
    clock.advance(60)
    assert clock.now() == 60.0


@pytest.mark.parametrize("clock", [Clock(), ManualClock(start=0.0)], ids=["real", "manual"])
async def test_within_returns_the_result_or_expires_and_cancels_the_work(clock: Clock) -> None:
    assert await clock.within(asyncio.sleep(0, result="done"), 60.0) == "done"
    cancelled = asyncio.Event()

    async def hang() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    waiting = asyncio.create_task(clock.within(hang(), 0.01))
    await asyncio.sleep(0)
    if isinstance(clock, ManualClock):
        clock.advance(0.01)
    with pytest.raises(Expired):
        await asyncio.wait_for(waiting, timeout=5)
    assert cancelled.is_set()


async def test_a_timeout_of_the_work_itself_is_not_the_clocks() -> None:
    async def times_out() -> None:
        raise TimeoutError("the socket's own")  # an OSError: the dispatch says UNAVAILABLE

    with pytest.raises(TimeoutError, match="the socket's own"):
        await Clock().within(times_out(), 60.0)
