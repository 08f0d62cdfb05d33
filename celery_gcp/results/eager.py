"""``EagerResult``: the outcome of a task run in this process (re-exported by
:mod:`celery_gcp.result`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .. import states
from .asyncresult import AsyncResult

if TYPE_CHECKING:
    from .store import Meta

__all__ = ["EagerResult"]

R = TypeVar("R")


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
            interval: float = 0.5, no_ack: bool = True, follow_parents: bool = True,
            callback: Callable[[str, Any], Any] | None = None,
            on_message: Callable[[Meta], Any] | None = None,
            on_interval: Callable[[], Any] | None = None,
            disable_sync_subtasks: bool = True) -> R:
        """Return the result; a failure is re-raised unless ``propagate=False``. There is
        nothing to wait for: the hooks are not called, as in Celery's ``EagerResult``."""
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
