"""The handlers a task base class overrides, as in Celery: ``before_start``, ``on_success``,
``on_failure``, ``on_retry``, ``after_return``. The worker calls them around each run (an eager
run too); each does nothing here.

Example::

    class AlertingTask(Task):
        def on_failure(self, exc, task_id, args, kwargs, einfo):
            alert(task_id, exc)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .einfo import ExceptionInfo

__all__ = ["TaskHandlers"]


class TaskHandlers:
    """Celery's task handlers, each a no-op to override."""

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called before the body runs."""

    def on_success(self, retval: Any, task_id: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> None:
        """Called after the body returned."""

    def on_failure(self, exc: BaseException, task_id: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any], einfo: ExceptionInfo) -> None:
        """Called when the body raised (and no retry was made)."""

    def on_retry(self, exc: BaseException | None, task_id: str, args: tuple[Any, ...],
                 kwargs: dict[str, Any], einfo: ExceptionInfo) -> None:
        """Called when the run ended in a retry."""

    def after_return(self, status: str, retval: Any, task_id: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any], einfo: ExceptionInfo | None) -> None:
        """Called after every run, whatever its outcome."""
