"""An in-process result store, for tests (``cache+memory://`` / ``memory://``)."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .store import Meta, ResultStore

__all__ = ["MemoryStore"]


class MemoryStore(ResultStore):
    """Records in a dict, JSON round-tripped as a real store would (so tests see what a
    worker in another process would read), with expiry by ``clock`` (``time.time``)."""

    def __init__(self, url: str = "memory://", clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, tuple[Any, float | None]] = {}

    def _put(self, key: str, value: Any, expires: float | None) -> None:
        deadline = None if expires is None else self._clock() + expires
        self._records[key] = (value, deadline)

    def _get(self, key: str) -> Any:
        found = self._records.get(key)
        if found is None:
            return None
        value, deadline = found
        if deadline is not None and deadline <= self._clock():
            del self._records[key]
            return None
        return value

    def set_meta(self, task_id: str, meta: Mapping[str, Any], expires: float | None) -> None:
        encoded = json.dumps(meta)  # refuses what a real store could not keep
        with self._lock:
            self._put(f"meta:{task_id}", encoded, expires)

    def get_meta(self, task_id: str) -> Meta | None:
        with self._lock:
            encoded = self._get(f"meta:{task_id}")
        return None if encoded is None else json.loads(encoded)

    def recent(self, limit: int = 50) -> list[Meta]:
        with self._lock:
            keys = [k for k in self._records if k.startswith("meta:")]
            metas = [json.loads(v) for v in (self._get(k) for k in keys) if v is not None]
        return _newest(metas, limit)

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._records.pop(f"meta:{task_id}", None)

    def save_group(self, group_id: str, task_ids: Sequence[str], expires: float | None) -> None:
        with self._lock:
            self._put(f"group:{group_id}", list(task_ids), expires)

    def restore_group(self, group_id: str) -> list[str] | None:
        with self._lock:
            ids = self._get(f"group:{group_id}")
        return None if ids is None else list(ids)

    def delete_group(self, group_id: str) -> None:
        with self._lock:
            self._records.pop(f"group:{group_id}", None)

    def chord_part_done(self, chord_id: str, index: int, expires: float | None) -> int:
        with self._lock:
            done: set[int] = copy.copy(self._get(f"chord:{chord_id}") or set())
            done.add(index)
            self._put(f"chord:{chord_id}", done, expires)
            return len(done)

    def chord_add(self, chord_id: str, task_id: str, expires: float | None) -> list[str]:
        with self._lock:
            added: list[str] = list(self._get(f"added:{chord_id}") or ())
            if task_id not in added:
                added.append(task_id)
            self._put(f"added:{chord_id}", added, expires)
            return list(added)

    def chord_added(self, chord_id: str) -> list[str]:
        with self._lock:
            return list(self._get(f"added:{chord_id}") or ())

    def claim(self, key: str, expires: float | None) -> bool:
        with self._lock:
            if self._get(f"claim:{key}") is not None:
                return False
            self._put(f"claim:{key}", True, expires)
            return True

    def purge(self) -> int:
        with self._lock:
            now = self._clock()
            gone = [k for k, (_, d) in self._records.items() if d is not None and d <= now]
            for key in gone:
                del self._records[key]
            return len(gone)

    # Nothing here waits on I/O (the lock guards a dict for a moment), so the async twins
    # run on the loop instead of a worker thread each.

    async def aset_meta(self, task_id: str, meta: Mapping[str, Any],
                        expires: float | None) -> None:
        self.set_meta(task_id, meta, expires)

    async def aget_meta(self, task_id: str) -> Meta | None:
        return self.get_meta(task_id)

    async def aget_metas(self, task_ids: Sequence[str]) -> list[Meta | None]:
        return self.get_metas(task_ids)

    async def achord_part_done(self, chord_id: str, index: int, expires: float | None) -> int:
        return self.chord_part_done(chord_id, index, expires)

    async def aclaim(self, key: str, expires: float | None) -> bool:
        return self.claim(key, expires)


def _newest(metas: list[Meta], limit: int) -> list[Meta]:
    done = [m for m in metas if m.get("date_done")]
    return sorted(done, key=lambda m: str(m["date_done"]), reverse=True)[:limit]
