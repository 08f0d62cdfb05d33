"""One emulator for a whole test module, made as new again for each test.

Starting an emulator is cheap, stopping one is not (its HTTP side stops on uvicorn's 0.1 s
tick), so test modules share one: :func:`shared_emulator` runs it for the module, and a
test's fixture calls :meth:`SharedEmulator.begin` before the test (a clock of its own) and
:meth:`SharedEmulator.reset` after it (every queue and job deleted, so nothing of one test is
dispatched during the next).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery_gcp.emulator import Clock, Emulator


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


class SharedEmulator:
    """A running emulator shared by the tests of a module."""

    def __init__(self, emulator: Emulator, clock: SwitchableClock) -> None:
        self.emulator = emulator
        self.clock = clock
        self._tasks = emulator.tasks_client()
        self._scheduler = emulator.scheduler_client()

    def begin(self, clock: Clock | None = None) -> Emulator:
        """The emulator for the next test, on ``clock`` (default: the real clock)."""
        self.clock.current = clock or Clock()
        return self.emulator

    def reset(self) -> None:
        """Leave nothing of the last test: faults disarmed, every job and queue (with its
        tasks) deleted, task name tombstones, the dispatch log and finished operations gone.

        The emulator has no reset of its own: the last three are cleared in its server's
        state, once nothing runs any more.
        """
        emulator, server = self.emulator, self.emulator.server
        assert server is not None
        emulator.faults.clear()
        for job in list(server.scheduler.jobs):
            self._scheduler.delete_job(name=job)
        for queue in list(server.tasks.queues):
            self._tasks.delete_queue(name=queue)
        server.core.tombstones.clear()
        server.core.recent.clear()
        operations: Any = server.tasks.operations
        operations._by_name.clear()
        operations._by_request.clear()
        self.clock.current = Clock()


@contextmanager
def shared_emulator(**options: Any) -> Iterator[SharedEmulator]:
    """Run an emulator (``Emulator(**options)``, on a :class:`SwitchableClock`) until the end of
    the ``with`` block."""
    clock = SwitchableClock()
    with Emulator(clock=clock, **options) as emulator:
        yield SharedEmulator(emulator, clock)
