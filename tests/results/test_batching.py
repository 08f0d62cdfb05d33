"""Batch (group commit) on a real event loop: batches form while a send is on its way,
each caller returns its own reply once its item is sent, errors reach that batch's callers
only, and a cancelled caller or sender leaves nobody waiting."""

from __future__ import annotations

import asyncio

import pytest

from celery_gcp.results.batching import Batch


class Sink:
    """A send that takes one loop turn per batch (as a round trip would), failing on demand."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.fail: set[int] = set()
        self.gate: asyncio.Event | None = None

    async def send(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.fail & set(items):
            raise OSError(f"cannot write {sorted(self.fail & set(items))}")
        return [item * 10 for item in items]


def test_items_sent_together_go_in_one_batch_and_later_ones_in_the_next() -> None:
    sink = Sink()

    async def main() -> list[int]:
        batch = Batch(sink.send)
        first = [asyncio.create_task(batch.submit(i)) for i in range(5)]
        await asyncio.sleep(0)  # the sender took the first five
        later = [asyncio.create_task(batch.submit(i)) for i in range(5, 8)]
        replies = await asyncio.gather(*first, *later)
        return [*replies, await batch.submit(8)]  # alone: a batch of its own

    assert asyncio.run(main()) == [i * 10 for i in range(9)]  # each caller its own reply
    assert sink.batches == [[0, 1, 2, 3, 4], [5, 6, 7], [8]]


def test_an_error_reaches_the_writers_of_its_batch_only() -> None:
    sink = Sink()
    sink.fail = {1}

    async def main() -> list[BaseException | int]:
        batch = Batch(sink.send)
        first = [asyncio.create_task(batch.submit(i)) for i in range(3)]
        await asyncio.sleep(0)
        later = [asyncio.create_task(batch.submit(i)) for i in range(3, 5)]
        return await asyncio.gather(*first, *later, return_exceptions=True)

    outcomes = asyncio.run(main())
    assert [type(o).__name__ for o in outcomes] == ["OSError"] * 3 + ["int"] * 2


@pytest.mark.parametrize("turns", [1, 3], ids=["before-it-started", "while-sending"])
def test_a_cancelled_caller_does_not_stop_the_others_nor_a_cancelled_sender_hang_them(
        turns: int) -> None:
    sink = Sink()

    async def main() -> tuple[list[BaseException | int], list[BaseException | int]]:
        batch = Batch(sink.send)
        sink.gate = asyncio.Event()
        writers = [asyncio.create_task(batch.submit(i)) for i in range(3)]
        await asyncio.sleep(0)
        writers[0].cancel()
        sink.gate.set()
        kept = await asyncio.gather(*writers, return_exceptions=True)
        sink.gate = asyncio.Event()  # the next send never ends: its sender is cancelled
        stuck = [asyncio.create_task(batch.submit(i)) for i in range(3, 5)]
        for _ in range(turns):
            await asyncio.sleep(0)
        assert batch._sender is not None
        batch._sender.cancel()
        return kept, await asyncio.gather(*stuck, return_exceptions=True)

    kept, stuck = asyncio.run(main())
    assert isinstance(kept[0], asyncio.CancelledError)
    assert kept[1:] == [10, 20]
    assert all(isinstance(o, asyncio.CancelledError) for o in stuck)
    assert sink.batches[0] == [0, 1, 2]
    assert len(sink.batches) == (1 if turns == 1 else 2)  # the second send had begun


def test_a_caller_outside_an_event_loop_is_refused() -> None:
    batch: Batch[int, int] = Batch(Sink().send)
    coroutine = batch.submit(1)
    with pytest.raises(RuntimeError, match="no running event loop"):
        coroutine.send(None)
    coroutine.close()
