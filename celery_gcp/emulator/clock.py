"""The emulator's clock: the real one, or a manual one that tests advance.

Everything in the emulator that waits for a time (a task's schedule_time, a retry's backoff, a
job's next fire, rate-limit tokens) waits on a :class:`Clock`, so with a :class:`ManualClock` a
test turns "fires next Monday 09:00" into ``clock.advance(...)`` instead of a wait.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any, TypeVar

__all__ = ["Clock", "Expired", "ManualClock", "RealClock"]

T = TypeVar("T")


class Expired(Exception):
    """What :meth:`Clock.within` raises when the time ran out (not a ``TimeoutError``, so a
    timeout of the awaited work itself, a socket's for one, is told apart)."""


class Clock:
    """Real time (seconds since the epoch, as ``time.time()``).

    A clock of another time overrides all three methods: :meth:`now`, :meth:`sleep_until`
    and :meth:`within` (see :class:`ManualClock`).
    """

    def now(self) -> float:
        """The current time."""
        return time.time()

    async def sleep_until(self, deadline: float, wake: asyncio.Event | None = None) -> None:
        """Return at ``deadline``, or earlier when ``wake`` is set."""
        delay = deadline - self.now()
        if wake is None:
            await asyncio.sleep(max(0.0, delay))
            return
        if delay <= 0 or wake.is_set():
            return
        with suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)

    async def within(self, work: Coroutine[Any, Any, T], seconds: float) -> T:
        """Await ``work``; if it takes more than ``seconds`` it is cancelled and
        :class:`Expired` is raised.

        On the real clock this is ``asyncio.timeout``: no task of its own, as dispatching
        calls it once per attempt.
        """
        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                return await work
        except TimeoutError:
            if scope.expired():
                raise Expired from None
            raise


RealClock = Clock


class ManualClock(Clock):
    """A clock that stands still until :meth:`advance` (or :meth:`set`) moves it.

    Thread-safe: a test thread may advance a clock whose waiters live on the emulator's loop.

    Example::

        clock = ManualClock(start=datetime(2026, 3, 27, tzinfo=UTC).timestamp())
        with Emulator(clock=clock) as emu:
            ...
            clock.advance(86400)      # a day passes, due tasks and jobs fire at once
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._abandoned = 0

    def now(self) -> float:
        """The clock's current time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``, waking whatever is now due."""
        self.set(self._now + seconds)

    def set(self, when: float) -> None:
        """Move the clock to ``when`` (never backwards), waking whatever is now due."""
        with self._lock:
            self._now = max(self._now, when)
            due = []
            while self._waiters and self._waiters[0][0] <= self._now:
                due.append(heapq.heappop(self._waiters)[2])
        for future in due:
            # A waiter of a stopped emulator was cancelled, and its loop may be closed: a
            # clock that outlives one emulator (a restart in a test) skips it.
            if future.done():
                continue
            with suppress(RuntimeError):  # "Event loop is closed"
                future.get_loop().call_soon_threadsafe(_resolve, future)

    async def sleep_until(self, deadline: float, wake: asyncio.Event | None = None) -> None:
        """Return once the clock reaches ``deadline``, or earlier when ``wake`` is set."""
        with self._lock:
            if deadline <= self._now:
                return
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (deadline, next(self._seq), future))
        if wake is None:
            await future
            return
        waker: asyncio.Future[Any] = asyncio.ensure_future(wake.wait())
        waiting: set[asyncio.Future[Any]] = {future, waker}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
            if not future.done():
                future.cancel()
                self._forget_abandoned()

    async def within(self, work: Coroutine[Any, Any, T], seconds: float) -> T:
        """Await ``work``; if the clock passes ``seconds`` from now first, it is cancelled and
        :class:`Expired` is raised."""
        task = asyncio.ensure_future(work)
        timer = asyncio.ensure_future(self.sleep_until(self._now + seconds))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            timer.cancel()
        if not task.done():
            task.cancel()
            raise Expired
        return task.result()

    def _forget_abandoned(self) -> None:
        # A waiter woken early stays in the heap until its time comes; while the clock stands
        # still those pile up, so drop them once they are the majority.
        with self._lock:
            self._abandoned += 1
            if self._abandoned > 100 and self._abandoned * 2 > len(self._waiters):
                self._waiters = [w for w in self._waiters if not w[2].done()]
                heapq.heapify(self._waiters)
                self._abandoned = 0


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
