"""A transport that records messages instead of sending them: ``broker_url="memory://"``.

Each message is encoded to its HTTP form and decoded back before it is recorded, so tests that
read ``transport.sent`` see exactly what a worker would receive.

Example::

    app = Celery("proj", broker_url="memory://")
    add.delay(2, 3)
    [message] = app.transport.sent
    assert json.loads(message.body) == {"x": 2, "y": 3}
"""

from __future__ import annotations

import dataclasses
import threading

from ..message import Message
from .base import Receipt, SendOptions, Transport

__all__ = ["MemoryTransport"]


class MemoryTransport(Transport):
    """Records every sent message in :attr:`sent`, in order."""

    addressed = False  # it records what a worker receives; nothing goes to Cloud Tasks

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self._lock = threading.Lock()

    def send(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Record a round-tripped copy of ``message`` (a route's target and a destination are
        kept: they say where the message goes, not what it carries)."""
        headers = {name.lower(): value for name, value in message.http_headers().items()}
        copy = Message.from_http(message.task, headers, message.body)
        if message.target is not None or message.destination is not None:
            copy = dataclasses.replace(copy, target=message.target,
                                       destination=message.destination)
        with self._lock:
            self.sent.append(copy)
        return Receipt(task_id=message.id, name=message.id)

    async def asend(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Record without leaving the event loop: recording never blocks."""
        return self.send(message, options)

    def revoke(self, name: str) -> bool:
        """Forget a recorded message whose id is ``name``; whether there was one."""
        with self._lock:
            kept = [m for m in self.sent if m.id != name]
            found = len(kept) != len(self.sent)
            self.sent[:] = kept
        return found

    def pop(self) -> list[Message]:
        """Return the recorded messages and forget them."""
        with self._lock:
            sent, self.sent = self.sent, []
        return sent

    def clear(self) -> None:
        """Forget the recorded messages."""
        with self._lock:
            self.sent.clear()
