"""The result store interface: what every store (memory, Redis, SQL) offers.

A store keeps three kinds of record, each with an expiry (``expires``: seconds from now, or
``None`` for no expiry):

* a task's **meta**, a JSON object in Celery's result layout (``task_id``, ``status``,
  ``result``, ``traceback``, ``children``, ``date_done``, and with ``result_extended`` also
  ``name``, ``args``, ``kwargs``, ``worker``, ``retries``, ``queue``); :mod:`.codec` encodes
  results and exceptions;
* a **group**: the ordered task ids of a ``GroupResult`` saved under the group's id;
* a **chord count**: which members of a chord header finished, counted idempotently, so a
  redelivered header task is not counted twice.

Plus :meth:`ResultStore.claim`, a set-if-absent marker (a redelivered task that already
succeeded is not run again; a chord body is sent by one member).

Stores implement the sync methods; the ``a``-prefixed async twins default to running them in
a worker thread, and a store with a native async client (Redis) overrides them. Nothing here
imports a driver: each store imports its own lazily.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

import anyio.to_thread

__all__ = ["Meta", "ResultStore"]

#: A task's stored meta: a JSON object (see the module docstring).
Meta = dict[str, Any]


class ResultStore(abc.ABC):
    """Where task results, groups and chord counts live.

    Example::

        store = store_for_url("redis://localhost:6379/0")
        store.set_meta("id-1", {"task_id": "id-1", "status": "SUCCESS", "result": 4}, 86400)
        store.get_meta("id-1")["result"]   # 4
    """

    #: The URL the store was made from, with any password masked (for messages and logs).
    url: str = ""

    # -- task metas ------------------------------------------------------------------------

    @abc.abstractmethod
    def set_meta(self, task_id: str, meta: Mapping[str, Any], expires: float | None) -> None:
        """Store ``meta`` as the record of ``task_id``, replacing any earlier one."""

    @abc.abstractmethod
    def get_meta(self, task_id: str) -> Meta | None:
        """The record of ``task_id``, or ``None`` if there is none (or it expired)."""

    def get_metas(self, task_ids: Sequence[str]) -> list[Meta | None]:
        """The records of ``task_ids``, in order (one round trip where the store can)."""
        return [self.get_meta(task_id) for task_id in task_ids]

    @abc.abstractmethod
    def forget(self, task_id: str) -> None:
        """Delete the record of ``task_id`` (nothing happens if there is none)."""

    # -- groups ----------------------------------------------------------------------------

    @abc.abstractmethod
    def save_group(self, group_id: str, task_ids: Sequence[str], expires: float | None) -> None:
        """Keep the ordered ``task_ids`` of group ``group_id``."""

    @abc.abstractmethod
    def restore_group(self, group_id: str) -> list[str] | None:
        """The task ids saved for ``group_id``, or ``None``."""

    @abc.abstractmethod
    def delete_group(self, group_id: str) -> None:
        """Forget group ``group_id`` (not its tasks' records)."""

    # -- chords and claims -----------------------------------------------------------------

    @abc.abstractmethod
    def chord_part_done(self, chord_id: str, index: int, expires: float | None) -> int:
        """Record that member ``index`` of chord ``chord_id``'s header finished; return how
        many distinct members have. Idempotent: recording one index twice counts it once."""

    @abc.abstractmethod
    def chord_add(self, chord_id: str, task_id: str, expires: float | None) -> list[str]:
        """Add member ``task_id`` to chord ``chord_id``'s header (``self.add_to_chord``);
        return the ids added so far, in the order first added. Idempotent: adding one id
        twice lists it once, in its first place."""

    @abc.abstractmethod
    def chord_added(self, chord_id: str) -> list[str]:
        """The ids added to chord ``chord_id``'s header (:meth:`chord_add`), in order."""

    @abc.abstractmethod
    def claim(self, key: str, expires: float | None) -> bool:
        """Set marker ``key`` if it is absent: ``True`` for the one caller that set it."""

    def recent(self, limit: int = 50) -> list[Meta]:
        """The records of the tasks that finished last (with a ``date_done``), newest first,
        at most ``limit``: what the dashboard lists. A store that cannot list returns []."""
        return []

    # -- upkeep ----------------------------------------------------------------------------

    def purge(self) -> int:
        """Delete expired records now; return how many (stores with native expiry: 0)."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional: stores without connections skip it
        """Release connections (the store can be used again afterwards)."""

    # -- async twins -----------------------------------------------------------------------

    async def aset_meta(self, task_id: str, meta: Mapping[str, Any],
                        expires: float | None) -> None:
        """Async :meth:`set_meta`."""
        await anyio.to_thread.run_sync(self.set_meta, task_id, meta, expires)

    async def aget_meta(self, task_id: str) -> Meta | None:
        """Async :meth:`get_meta`."""
        return await anyio.to_thread.run_sync(self.get_meta, task_id)

    async def aget_metas(self, task_ids: Sequence[str]) -> list[Meta | None]:
        """Async :meth:`get_metas`."""
        return await anyio.to_thread.run_sync(self.get_metas, task_ids)

    async def achord_part_done(self, chord_id: str, index: int, expires: float | None) -> int:
        """Async :meth:`chord_part_done`."""
        return await anyio.to_thread.run_sync(self.chord_part_done, chord_id, index, expires)

    async def aclaim(self, key: str, expires: float | None) -> bool:
        """Async :meth:`claim`."""
        return await anyio.to_thread.run_sync(self.claim, key, expires)
