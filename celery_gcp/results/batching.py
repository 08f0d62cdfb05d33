"""Group commit: writes made on one event loop while others are on their way go together.

A worker runs many tasks at once on its event loop, and each stores its outcome before its
request is answered. Sent one by one, every write pays a round trip and the client's
per-command cost; sent together (one Redis pipeline), they pay it once. :class:`WriteBatch`
does that without delaying anyone on purpose: the first write starts a sender; writes that
arrive while a batch is on its way wait for the next one. Each caller still returns only
once *its* write is done (or raises its error), so nothing is answered before it is stored.

Example::

    batch = WriteBatch(send_all)          # send_all(items) writes them, or raises
    await batch.write(("key", "value"))   # returns once that item was written
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["WriteBatch"]

T = TypeVar("T")


class WriteBatch(Generic[T]):
    """Items written through ``send``, gathered while a send is in progress (one loop)."""

    def __init__(self, send: Callable[[list[T]], Awaitable[None]]) -> None:
        self._send = send
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._batch: list[tuple[T, asyncio.Future[None]]] = []  # the one on its way
        self._sender: asyncio.Task[None] | None = None

    async def write(self, item: T) -> None:
        """Write ``item`` with the next batch; returns when it is written, or raises what
        the batch's send raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((item, done))
        if self._sender is None:
            self._sender = sender = loop.create_task(self._drain())
            sender.add_done_callback(self._ended)
        await done

    async def _drain(self) -> None:
        while self._pending:
            self._batch, self._pending = self._pending, []
            try:
                await self._send([item for item, _ in self._batch])
            except Exception as exc:
                _settle(self._batch, exc)
            else:
                _settle(self._batch, None)
            self._batch = []
        self._sender = None  # no await since the check: a new write starts a new sender

    def _ended(self, sender: asyncio.Task[None]) -> None:
        if self._sender is not sender:
            return  # drained
        # Cancelled (the loop is shutting down), even before it started: no writer is left
        # waiting forever.
        self._sender = None
        left, self._batch, self._pending = self._batch + self._pending, [], []
        for _, done in left:
            done.cancel()


def _settle(batch: list[tuple[T, asyncio.Future[None]]], error: BaseException | None) -> None:
    for _, done in batch:
        if done.done():  # its caller was cancelled
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
