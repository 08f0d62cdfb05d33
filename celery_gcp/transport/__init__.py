"""Transports: how a :class:`~celery_gcp.message.Message` leaves the process."""

from .base import Receipt, Transport
from .memory import MemoryTransport

__all__ = ["MemoryTransport", "Receipt", "Transport"]
