"""The one send seam: every transport takes a :class:`~celery_gcp.message.Message`."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio.to_thread

from ..message import Message

__all__ = ["Receipt", "SendOptions", "Transport"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a transport reports for one sent message."""

    task_id: str
    #: The platform's name for the task (the Cloud Tasks task name), when there is one.
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SendOptions:
    """How to send (not part of the message): Celery's ``retry`` / ``retry_policy`` of
    ``apply_async``, and what a caller-given ``task_id`` that already exists means
    (``on_duplicate="raise"``, the default, or ``"ignore"``: treat it as already sent).

    ``prepare`` is called with the platform request (a ``tasks_v2.CreateTaskRequest``) just
    before it is sent and returns the request to send (``pre_create_hook`` of the FastAPI
    route builders); ``timeout`` bounds each create call, in seconds."""

    retry: bool = True
    retry_policy: Mapping[str, float] | None = None
    on_duplicate: str = "raise"
    prepare: Callable[[Any], Any] | None = None
    timeout: float | None = None


class Transport(abc.ABC):
    """Hands messages over to whatever runs them.

    Subclasses implement :meth:`send`; the async and bulk variants default to it.
    ``addressed`` says whether it needs each message's
    :class:`~celery_gcp.message.Destination` (a recording transport does not).
    """

    addressed: ClassVar[bool] = True

    @abc.abstractmethod
    def send(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Send one message; raise a :class:`~celery_gcp.exceptions.TransportError` on failure."""

    async def asend(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Send one message without blocking the event loop."""
        return await anyio.to_thread.run_sync(self.send, message, options)

    def send_many(self, messages: Sequence[Message],
                  options: SendOptions | None = None) -> list[Receipt | Exception]:
        """Send several messages; each slot holds its receipt or the error that stopped it."""
        results: list[Receipt | Exception] = []
        for message in messages:
            try:
                results.append(self.send(message, options))
            except Exception as exc:
                results.append(exc)
        return results

    async def asend_many(self, messages: Sequence[Message],
                         options: SendOptions | None = None) -> list[Receipt | Exception]:
        """Async :meth:`send_many`."""
        results: list[Receipt | Exception] = []
        for message in messages:
            try:
                results.append(await self.asend(message, options))
            except Exception as exc:
                results.append(exc)
        return results

    def task_state(self, name: str) -> str | None:
        """The Celery state of the platform task ``name`` where it can be known, else ``None``."""
        return None

    def revoke(self, name: str) -> bool:
        """Delete the platform task ``name`` before it runs; whether one was deleted."""
        return False

    def close(self) -> None:  # noqa: B027 - most transports hold nothing to release
        """Release connections; the transport may not be used afterwards."""
