"""The one send seam: every transport takes a :class:`~celery_gcp.message.Message`."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import anyio.to_thread

from ..message import Message

__all__ = ["Receipt", "Transport"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a transport reports for one sent message."""

    task_id: str
    #: The platform's name for the task (the Cloud Tasks task name), when there is one.
    name: str | None = None


class Transport(abc.ABC):
    """Hands messages over to whatever runs them.

    Subclasses implement :meth:`send`; the async and bulk variants default to it.
    """

    @abc.abstractmethod
    def send(self, message: Message) -> Receipt:
        """Send one message; raise a :class:`~celery_gcp.exceptions.TransportError` on failure."""

    async def asend(self, message: Message) -> Receipt:
        """Send one message without blocking the event loop."""
        return await anyio.to_thread.run_sync(self.send, message)

    def send_many(self, messages: Sequence[Message]) -> list[Receipt | Exception]:
        """Send several messages; each slot holds its receipt or the error that stopped it."""
        results: list[Receipt | Exception] = []
        for message in messages:
            try:
                results.append(self.send(message))
            except Exception as exc:
                results.append(exc)
        return results

    async def asend_many(self, messages: Sequence[Message]) -> list[Receipt | Exception]:
        """Async :meth:`send_many`."""
        results: list[Receipt | Exception] = []
        for message in messages:
            try:
                results.append(await self.asend(message))
            except Exception as exc:
                results.append(exc)
        return results

    def close(self) -> None:  # noqa: B027 - most transports hold nothing to release
        """Release connections; the transport may not be used afterwards."""
