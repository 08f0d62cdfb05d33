"""What every part of a running emulator shares: clock, store, HTTP sender, tombstones (of task
names and of deleted queues' names), log."""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from ..platform import QUEUE_REUSE_SECONDS, TASK_RETENTION_SECONDS
from .clock import Clock
from .dispatch import HttpSender
from .faults import Faults
from .store import Store

__all__ = ["Core", "from_duration", "from_timestamp", "set_timestamp"]

logger = logging.getLogger("celery_gcp.emulator")

# Expired tombstones are deleted once every this many burials: often enough that the data dir
# stays near the live window, rarely enough that a delete is not paid per task.
_PRUNE_EVERY = 1000


@dataclass
class Core:
    """Shared state of one emulator."""

    clock: Clock
    store: Store
    sender: HttpSender
    faults: Faults
    tombstone_seconds: float = 3600.0
    tombstones: dict[str, float] = field(default_factory=dict)
    #: How long a deleted queue's name can't be used for a new queue.
    queue_reuse_seconds: float = QUEUE_REUSE_SECONDS
    #: How long after its creation a task is deleted, dispatched or not.
    task_retention_seconds: float = TASK_RETENTION_SECONDS
    #: Deleted queues' names, each with the time its name can be used again.
    deleted_queues: dict[str, float] = field(default_factory=dict)
    #: The latest dispatches, newest last, for the read-only status view.
    recent: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=500))
    _burials: int = 0

    def tombstoned(self, name: str) -> bool:
        """Whether ``name`` belongs to a task that ended within the tombstone window."""
        return _reserved(self.tombstones, name, self.clock.now()) is not None

    def bury(self, name: str) -> None:
        """Reserve a task name for the tombstone window (stored with the task's end)."""
        until = self.clock.now() + self.tombstone_seconds
        self.tombstones[name] = until
        self.store.end_task(name, until)
        self._burials += 1
        if self._burials % _PRUNE_EVERY == 0:
            self.prune()

    def prune(self) -> None:
        """Drop the tombstones expired on the emulator's clock, in memory and in the store."""
        now = self.clock.now()
        self.store.prune_tombstones(now)
        if len(self.tombstones) > _PRUNE_EVERY:
            _drop_expired(self.tombstones, now)

    def delete_queue(self, name: str) -> None:
        """Forget a queue and its tasks, and reserve its name for the reuse window."""
        now = self.clock.now()
        until = now + self.queue_reuse_seconds
        # Queues are deleted rarely: expired names are dropped here, not on a schedule.
        _drop_expired(self.deleted_queues, now)
        if until > now:
            self.deleted_queues[name] = until
        self.store.delete_queue(name, until)

    def queue_free_at(self, name: str) -> float | None:
        """When the name of the deleted queue ``name`` can be used again, or ``None`` if it
        can now."""
        return _reserved(self.deleted_queues, name, self.clock.now())

    def log_dispatch(self, **fields: Any) -> None:
        """Log one dispatch and keep it for the status view."""
        self.recent.append(fields)
        if logger.isEnabledFor(logging.INFO):
            logger.info(" ".join(f"{k}={v}" for k, v in fields.items()))


def from_timestamp(ts: Timestamp) -> float:
    """A protobuf Timestamp as seconds since the epoch."""
    return float(ts.seconds + ts.nanos / 1e9)


def set_timestamp(ts: Timestamp, when: float) -> None:
    """Set a protobuf Timestamp from seconds since the epoch."""
    ts.FromNanoseconds(round(when * 1e9))


def from_duration(d: Duration) -> float:
    """A protobuf Duration in seconds."""
    return float(d.seconds + d.nanos / 1e9)


def _reserved(table: dict[str, float], name: str, now: float) -> float | None:
    """Until when ``name`` is reserved in ``table`` (name -> until), or ``None``; an expired
    entry is dropped as it is found."""
    until = table.get(name)
    if until is None:
        return None
    if until > now:
        return until
    del table[name]
    return None


def _drop_expired(table: dict[str, float], now: float) -> None:
    for key in [k for k, until in table.items() if until <= now]:
        del table[key]
