"""One emulator for a whole test module, made as new again for each test.

Test modules share one emulator: :func:`shared_emulator` runs it for the module, and a
test's fixture calls :meth:`SharedEmulator.begin` before the test (a clock of its own) and
:meth:`SharedEmulator.reset` after it (every queue and job deleted, so nothing of one test is
dispatched during the next).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from celery_gcp.emulator import Clock, Emulator

T = TypeVar("T")


class SwitchableClock(Clock):
    """The time of whichever clock the current test set: the real one, or its own
    :class:`~celery_gcp.emulator.ManualClock`. (Only queues and jobs of the current test wait
    on it: :meth:`SharedEmulator.reset` deleted the others.)"""

    def __init__(self) -> None:
        self.current: Clock = Clock()

    def now(self) -> float:
        return self.current.now()

    async def sleep_until(self, deadline: float, wake: asyncio.Event | None = None) -> None:
        await self.current.sleep_until(deadline, wake)

    async def within(self, work: Coroutine[Any, Any, T], seconds: float) -> T:
        return await self.current.within(work, seconds)


class SharedEmulator:
    """A running emulator shared by the tests of a module."""

    def __init__(self, emulator: Emulator, clock: SwitchableClock) -> None:
        self.emulator = emulator
        self.clock = clock

    def begin(self, clock: Clock | None = None) -> Emulator:
        """The emulator for the next test, on ``clock`` (default: the real clock)."""
        self.clock.current = clock or Clock()
        return self.emulator

    def reset(self) -> None:
        """Leave nothing of the last test (:meth:`Emulator.reset`), on the real clock again."""
        self.emulator.reset()
        self.clock.current = Clock()


@contextmanager
def shared_emulator(**options: Any) -> Iterator[SharedEmulator]:
    """Run an emulator (``Emulator(**options)``, on a :class:`SwitchableClock`) until the end of
    the ``with`` block."""
    clock = SwitchableClock()
    with Emulator(clock=clock, **options) as emulator:
        yield SharedEmulator(emulator, clock)
