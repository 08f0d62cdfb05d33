"""The link a Redis store's batches go through: one connection per event loop, each batch of
GETs and SETs (:class:`~celery_gcp.results.batching.Batch`) sent in one write, its replies read
in order. :mod:`.redis_store` makes one per event loop for ``aset_meta`` / ``aget_meta``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

import redis
import redis.asyncio

try:  # the redis extra brings hiredis; redis-py alone packs in Python, slower
    from hiredis import pack_command as _hiredis_pack
except ImportError:
    _hiredis_pack = None  # type: ignore[assignment]

__all__ = ["BatchLink", "Command", "finish"]


#: A batched command: ``(key,)`` is a GET, ``(key, value, px)`` a SET.
Command = tuple[str] | tuple[str, str, int | None]


def _args(command: Command) -> tuple[str | int, ...]:
    if len(command) == 1:
        return ("GET", command[0])
    key, value, px = command
    return ("SET", key, value) if px is None else ("SET", key, value, "PX", px)


def _packed(connection: Any, commands: list[Command]) -> list[bytes]:
    """``commands`` as RESP, by hiredis (in C, about ten times faster) or else redis-py."""
    if _hiredis_pack is None:
        return list(connection.pack_commands([_args(c) for c in commands]))
    # hiredis's stub types the command as a one-element tuple; it takes any length.
    return [_hiredis_pack(_args(c)) for c in commands]  # type: ignore[arg-type]


class BatchLink:
    """The one connection an event loop's batches go through. :class:`Batch` sends one
    batch at a time, so a connection of its own serves them all, without the pool's
    checkout and health checks per batch (most of a small pipeline's cost in redis-py).
    The batch's write and its replies share one timeout (the connection's
    ``socket_timeout``): redis-py's own, per write and per reply, costs a task and a
    timer each. A batch that fails drops the connection (its replies may be left
    unread); the next batch opens a new one."""

    def __init__(self, client: redis.asyncio.Redis,
                 reaching: Callable[[], contextlib.AbstractContextManager[None]]) -> None:
        self._pool = client.connection_pool
        self._reaching = reaching
        self._connection: Any = None
        self._timeout: float | None = None

    async def send(self, commands: list[Command]) -> list[Any]:
        """Send ``commands`` in one write; their replies, in order."""
        connection = self._connection
        if connection is None:
            connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
            self._timeout, connection.socket_timeout = connection.socket_timeout, None
            self._connection = connection
        try:
            with self._reaching():
                try:
                    async with asyncio.timeout(self._timeout):
                        if not connection.is_connected:
                            await connection.connect()
                        await connection.send_packed_command(
                            _packed(connection, commands), check_health=False)
                        return [await connection.read_response() for _ in commands]
                except TimeoutError as exc:  # asyncio's: say it as redis-py does
                    raise redis.exceptions.TimeoutError(
                        f"no answer within {self._timeout} s") from exc
        except BaseException:
            self._connection = None
            await connection.disconnect()
            raise

    async def aclose(self) -> None:
        """Close the connection (a later batch opens a new one)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()


async def finish(closer: AsyncGenerator[None, None], link: BatchLink | None) -> None:
    """Close ``link``'s connection and run ``closer``'s finally (it closes its client) from
    inside their loop."""
    if link is not None:
        await link.aclose()
    await closer.aclose()

