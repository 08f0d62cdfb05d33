"""Transports: how a :class:`~celery_gcp.message.Message` leaves the process."""

from __future__ import annotations

import warnings
from collections.abc import Callable

from ..exceptions import CeleryGcpWarning
from ..utils.urls import masked_url
from .base import Receipt, SendOptions, Transport
from .memory import MemoryTransport

__all__ = ["MemoryTransport", "Receipt", "SendOptions", "Transport", "transport_for_url"]


def transport_for_url(url: str | None, *, clock: Callable[[], float] | None = None,
                      concurrency: int = 16) -> Transport:
    """The transport for a ``broker_url``: ``memory://`` records; anything else is Cloud Tasks
    (``clock``: the app's time in epoch seconds; ``concurrency``: bulk calls in flight).

    A Redis or AMQP URL left over from Celery is ignored with one warning, never an error.
    """
    if url and str(url).startswith("memory://"):
        return MemoryTransport()
    if url and not str(url).startswith("cloudtasks://"):
        warnings.warn(
            f"broker_url {masked_url(str(url))!r} is ignored: celery_gcp sends tasks through "
            "Google Cloud Tasks and needs no broker. Remove broker_url, or set it to "
            "'memory://' to record messages in tests.",
            CeleryGcpWarning, stacklevel=4,
        )
    from .cloudtasks import CloudTasksTransport

    return CloudTasksTransport(clock=clock, concurrency=concurrency)

