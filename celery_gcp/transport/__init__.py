"""Transports: how a :class:`~celery_gcp.message.Message` leaves the process."""

from __future__ import annotations

import re
import warnings

from ..exceptions import CeleryGcpWarning, ImproperlyConfigured
from ..message import Message
from .base import Receipt, Transport
from .memory import MemoryTransport

__all__ = ["MemoryTransport", "Receipt", "Transport", "transport_for_url"]


def transport_for_url(url: str | None) -> Transport:
    """The transport for a ``broker_url``: ``memory://`` records; a Celery broker is ignored."""
    if url and str(url).startswith("memory://"):
        return MemoryTransport()
    if url:
        warnings.warn(
            f"broker_url {_redact(str(url))!r} is ignored: celery_gcp sends tasks through "
            "Google Cloud Tasks and needs no broker. Remove broker_url, or set it to "
            "'memory://' to record messages in tests.",
            CeleryGcpWarning, stacklevel=4,
        )
    return _NoTransport()


class _NoTransport(Transport):
    def send(self, message: Message) -> Receipt:
        raise ImproperlyConfigured(
            f"cannot send task {message.task!r}: no transport is configured. Set "
            "broker_url='memory://' to record sent messages (tests), or task_always_eager=True "
            "to run tasks in this process."
        )


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)
