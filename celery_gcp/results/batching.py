"""Group commit: commands made on one event loop while others are on their way go together.

A worker runs many tasks at once on its event loop; each reads its task's record before it
runs (a revoked or already finished task is not run) and stores its outcome before its
request is answered. Sent one by one, every command pays a round trip and the client's
per-command cost; sent together (one Redis pipeline), they pay it once. :class:`Batch` does
that without delaying anyone on purpose: the first command starts a sender; commands that
arrive while a batch is on its way wait for the next one. Each caller still returns only
once *its* command is done, with its own reply (or raises its batch's error), so nothing is
answered before it is stored.

Example::

    batch = Batch(send_all)               # send_all(items) -> one reply per item, or raises
    reply = await batch.submit(("GET", "key"))   # returns once that item was sent
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Batch"]

T = TypeVar("T")
R = TypeVar("R")


class Batch(Generic[T, R]):
    """Items sent through ``send``, gathered while a send is in progress (one loop);
    ``send`` returns one reply per item, in order."""

    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]]) -> None:
        self._send = send
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._batch: list[tuple[T, asyncio.Future[R]]] = []  # the one on its way
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Send ``item`` with the next batch; returns its reply once sent, or raises what
        the batch's send raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, done))
        if self._sender is None:
            self._sender = sender = loop.create_task(self._drain())
            sender.add_done_callback(self._ended)
        return await done

    async def _drain(self) -> None:
        while self._pending:
            self._batch, self._pending = self._pending, []
            try:
                replies = await self._send([item for item, _ in self._batch])
            except Exception as exc:
                _settle(self._batch, None, exc)
            else:
                _settle(self._batch, replies, None)
            self._batch = []
        self._sender = None  # no await since the check: a new item starts a new sender

    def _ended(self, sender: asyncio.Task[None]) -> None:
        if self._sender is not sender:
            return  # drained
        # Cancelled (the loop is shutting down), even before it started: no caller is left
        # waiting forever.
        self._sender = None
        left, self._batch, self._pending = self._batch + self._pending, [], []
        for _, done in left:
            done.cancel()


def _settle(batch: list[tuple[T, asyncio.Future[R]]], replies: list[R] | None,
            error: BaseException | None) -> None:
    for index, (_, done) in enumerate(batch):
        if done.done():  # its caller was cancelled
            continue
        if replies is not None:
            done.set_result(replies[index])
        else:
            done.set_exception(error or RuntimeError("batch ended without replies"))
