"""``ResultSet`` and ``GroupResult`` (re-exported by :mod:`celery_gcp.result`), as Celery's.

A :class:`GroupResult` is kept in the result store by :meth:`GroupResult.save` (its id and
its members' ids, in order) and found again by :meth:`GroupResult.restore`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..exceptions import NoResultBackendError, TimeoutError
from .asyncresult import AsyncResult, ResultBase, _current_app

if TYPE_CHECKING:
    from ..app import Celery
    from .store import Meta, ResultStore

__all__ = ["GroupResult", "ResultSet"]


class ResultSet(ResultBase):
    """Several results, read together, in order."""

    def __init__(self, results: Iterable[AsyncResult[Any]], app: Celery | None = None,
                 **kwargs: Any) -> None:
        self.results = list(results)
        self.app = app

    def add(self, result: AsyncResult[Any]) -> None:
        """Add ``result`` to the set (if it is not there yet)."""
        if result not in self.results:
            self.results.append(result)

    def remove(self, result: AsyncResult[Any] | str) -> None:
        """Remove ``result`` (``KeyError`` if it is not there)."""
        if result not in self.results:
            raise KeyError(result)
        self.results.remove(result)  # type: ignore[arg-type]

    def discard(self, result: AsyncResult[Any] | str) -> None:
        """Remove ``result`` if it is there."""
        if result in self.results:
            self.results.remove(result)  # type: ignore[arg-type]

    def update(self, results: Iterable[AsyncResult[Any]]) -> None:
        """Add each of ``results`` that is not there yet."""
        for result in results:
            self.add(result)

    def clear(self) -> None:
        """Remove every result."""
        self.results.clear()

    @property
    def backend(self) -> ResultStore | None:
        """The result store read (the app's; ``None``: no store)."""
        return (self.app or _current_app()).backend

    #: As Celery's with a backend that has no native join: :meth:`join_native` is :meth:`join`.
    supports_native_join = False

    def get(self, timeout: float | None = None, propagate: bool = True,
            interval: float = 0.5, callback: Callable[[str, Any], Any] | None = None,
            no_ack: bool = True, on_message: Callable[[Meta], Any] | None = None,
            disable_sync_subtasks: bool = True,
            on_interval: Callable[[], Any] | None = None) -> list[Any]:
        """Every result's value, in order (:meth:`join`)."""
        return self.join(timeout, propagate, interval, callback, no_ack, on_message,
                         disable_sync_subtasks, on_interval)

    def join(self, timeout: float | None = None, propagate: bool = True,
             interval: float = 0.5, callback: Callable[[str, Any], Any] | None = None,
             no_ack: bool = True, on_message: Callable[[Meta], Any] | None = None,
             disable_sync_subtasks: bool = True,
             on_interval: Callable[[], Any] | None = None) -> list[Any]:
        """Wait for each result in turn and return their values (each failure re-raised
        unless ``propagate=False``; :class:`TimeoutError` once ``timeout`` has passed).
        ``callback(task_id, value)`` is called for each as it is ready; ``on_message`` and
        ``on_interval`` go to each :meth:`AsyncResult.get`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("join operation timed out")
            value = result.get(timeout=remaining, propagate=propagate, interval=interval,
                               on_message=on_message, on_interval=on_interval,
                               disable_sync_subtasks=disable_sync_subtasks)
            if callback is not None:
                callback(result.id, value)
            values.append(value)
        return values

    join_native = join

    def completed_count(self) -> int:
        """How many results succeeded."""
        return sum(r.successful() for r in self.results)

    def ready(self) -> bool:
        """Whether every result is ready."""
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        """Whether every result succeeded."""
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        """Whether any result failed."""
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        """Whether any result is not ready yet."""
        return not self.ready()

    def forget(self) -> None:
        """Forget every result."""
        for result in self.results:
            result.forget()

    def revoke(self, connection: Any = None, terminate: bool = False, signal: Any = None,
               wait: bool = False, timeout: float | None = None) -> None:
        """Revoke every result."""
        for result in self.results:
            result.revoke(terminate=terminate)

    def __iter__(self) -> Iterator[AsyncResult[Any]]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> AsyncResult[Any]:
        return self.results[index]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: [{', '.join(r.id for r in self.results)}]>"


class GroupResult(ResultSet):
    """The results of a group, in the order of its signatures, under the group's id:
    ``GroupResult(id, results)``, the id first, as Celery's."""

    def __init__(self, id: str | None = None, results: Iterable[AsyncResult[Any]] | None = None,
                 parent: Any = None, app: Celery | None = None, **kwargs: Any) -> None:
        if id is not None and not isinstance(id, str):
            raise TypeError(f"GroupResult takes the group's id first, as Celery's: "
                            f"GroupResult(id, results), not a {type(id).__name__} of results")
        super().__init__(results or (), app=app)
        self.id = id
        self.parent = parent

    @property
    def children(self) -> list[AsyncResult[Any]]:
        """The group's results, as Celery's ``GroupResult.children``."""
        return self.results

    def as_tuple(self) -> tuple[Any, Any]:
        """``((id, the parent's as_tuple() or None), [each member's as_tuple()])``, as
        Celery's; ``result_from_tuple`` rebuilds it."""
        parent = self.parent
        return ((self.id, None if parent is None else parent.as_tuple()),
                [result.as_tuple() for result in self.results])

    def _store(self, backend: ResultStore | None = None) -> ResultStore:
        store = backend or (self.app or _current_app()).backend
        if store is None:
            raise NoResultBackendError(
                f"group {self.id} cannot be saved or restored: the app has no result store "
                "(set result_backend)")
        return store

    def save(self, backend: ResultStore | None = None) -> GroupResult:
        """Keep this group in the result store (until ``result_expires``), for
        :meth:`restore`."""
        from .layer import expires_of

        if self.id is None:
            raise ValueError("a GroupResult without an id cannot be saved: give it id=")
        self._store(backend).save_group(self.id, [r.id for r in self.results],
                                        expires_of(self.app or _current_app()))
        return self

    def delete(self, backend: ResultStore | None = None) -> None:
        """Remove this group from the result store (not its tasks' results)."""
        if self.id is not None:
            self._store(backend).delete_group(self.id)

    @classmethod
    def restore(cls, id: str, backend: ResultStore | None = None,
                app: Celery | None = None) -> GroupResult | None:
        """The group saved under ``id``, or ``None``."""
        ids = cls(id=id, app=app)._store(backend).restore_group(id)
        if ids is None:
            return None
        return cls(id, [AsyncResult(task_id, app=app, backend=backend) for task_id in ids],
                   app=app)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupResult):
            return other.id == self.id and other.results == self.results
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.id, tuple(self.results)))

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(r.id for r in self.results)}]>"
