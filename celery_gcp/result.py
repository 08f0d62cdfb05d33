"""Results, mirroring :mod:`celery.result`.

celery_gcp keeps no result store: Cloud Tasks runs the task and forgets its return value. An
:class:`AsyncResult` knows its id; its state is ``PENDING`` as Celery reports for an id it has no
record of, and :meth:`AsyncResult.get` says so and what to do instead. Eager calls return an
:class:`EagerResult`, which holds the outcome, exactly as in Celery.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import states
from .exceptions import NoResultBackendError

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["AsyncResult", "EagerResult", "GroupResult", "ResultBase"]

R = TypeVar("R")

_NO_STORE = (
    "celery_gcp keeps no result store, so the result of task {id} cannot be fetched: Cloud "
    "Tasks runs a task and keeps no return value. Have the task save what callers need (for "
    "example in your database, keyed by the task id), chain a follow-up task with link=, or "
    "use task_always_eager=True in tests to get EagerResult values."
)


class ResultBase:
    """Base class for results."""

    parent: Any = None


class AsyncResult(ResultBase, Generic[R]):
    """The handle of a task that was sent.

    Example::

        result = add.delay(2, 3)
        result.id       # the task id, also the Cloud Tasks task name
    """

    def __init__(self, id: str, backend: Any = None, task_name: str | None = None,
                 app: Celery | None = None, parent: Any = None,
                 location: str | None = None) -> None:
        self.id = id
        self.task_id = id
        self.name = task_name
        self.app = app
        self.parent = parent
        #: Where the transport put the task (the Cloud Tasks task name), when known.
        self.location = location

    @property
    def state(self) -> str:
        """What the platform can tell: ``PENDING`` (not tried yet) or ``RETRY`` (attempts
        failed so far) while Cloud Tasks holds the task; ``PENDING`` otherwise, as Celery
        reports an id it has no record of (a done task leaves no record without a store)."""
        if self.app is not None and self.location:
            return self.app.transport.task_state(self.location) or states.PENDING
        return states.PENDING

    status = state

    def get(self, timeout: float | None = None, propagate: bool = True, **kwargs: Any) -> R:
        """Raise :class:`NoResultBackendError`: there is no result store to read from."""
        raise NoResultBackendError(_NO_STORE.format(id=self.id))

    wait = get

    @property
    def result(self) -> Any:
        """``None``, as Celery gives for a pending task."""
        return None

    info = result

    @property
    def traceback(self) -> str | None:
        """``None``: no failure is known."""
        return None

    def ready(self) -> bool:
        """``False``: the outcome is not known."""
        return False

    def successful(self) -> bool:
        """``False``: the outcome is not known."""
        return False

    def failed(self) -> bool:
        """``False``: the outcome is not known."""
        return False

    def forget(self) -> None:
        """Nothing to forget without a result store."""

    def revoke(self, connection: Any = None, terminate: bool = False, signal: Any = None,
               wait: bool = False, timeout: float | None = None) -> bool:
        """Delete the task if it has not run yet; returns whether it was deleted.

        A running task cannot be stopped (``terminate=True`` raises): Cloud Tasks has no
        way to interrupt a request in flight.
        """
        if terminate:
            raise NotImplementedError("terminate=True: Cloud Tasks cannot stop a running task")
        if self.app is None or not self.location:
            return False
        return self.app.transport.revoke(self.location)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return other.id == self.id
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.id}>"


class GroupResult(ResultBase):
    """The results of a group, in the order of its signatures."""

    def __init__(self, results: list[AsyncResult[Any]], id: str | None = None) -> None:
        self.results = results
        self.id = id

    def get(self, timeout: float | None = None, propagate: bool = True,
            **kwargs: Any) -> list[Any]:
        """Every result's value, in order (each raises as its own ``get`` does)."""
        return [r.get(timeout=timeout, propagate=propagate) for r in self.results]

    def ready(self) -> bool:
        """Whether every result is ready."""
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        """Whether every result succeeded."""
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        """Whether any result failed."""
        return any(r.failed() for r in self.results)

    def __iter__(self) -> Iterator[AsyncResult[Any]]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> AsyncResult[Any]:
        return self.results[index]


class EagerResult(AsyncResult[R]):
    """The outcome of a task run in this process (``apply()`` or ``task_always_eager``)."""

    def __init__(self, id: str, ret_value: Any, state: str, traceback: str | None = None,
                 name: str | None = None) -> None:
        super().__init__(id, task_name=name)
        self._result = ret_value
        self._state = state
        self._traceback = traceback

    @property
    def state(self) -> str:
        """The state the run ended in (``SUCCESS``, ``FAILURE``, ``REVOKED``, ...)."""
        return self._state

    status = state

    def get(self, timeout: float | None = None, propagate: bool = True,
            disable_sync_subtasks: bool = True, **kwargs: Any) -> R:
        """Return the result; a failure is re-raised unless ``propagate=False``."""
        if self.successful():
            return self._result  # type: ignore[no-any-return]
        if self._state in states.PROPAGATE_STATES and propagate:
            raise self._result
        return self._result  # type: ignore[no-any-return]

    wait = get

    @property
    def result(self) -> Any:
        """The return value, or the exception of a failed run."""
        return self._result

    info = result

    @property
    def traceback(self) -> str | None:
        """The formatted traceback of a failed run."""
        return self._traceback

    def ready(self) -> bool:
        """``True``: an eager run is over when this exists."""
        return True

    def successful(self) -> bool:
        """Whether the run succeeded."""
        return self._state == states.SUCCESS

    def failed(self) -> bool:
        """Whether the run failed."""
        return self._state == states.FAILURE

    def revoke(self, connection: Any = None, terminate: bool = False, signal: Any = None,
               wait: bool = False, timeout: float | None = None) -> bool:
        """Nothing to revoke: the task already ran."""
        return False

    def __repr__(self) -> str:
        return f"<EagerResult: {self.id} {self._state}>"
