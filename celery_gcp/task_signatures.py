"""A task's signatures: ``add.s(2, 2)``, ``add.si()``, ``add.signature()``, and the
``map`` / ``starmap`` / ``chunks`` signatures over its items.

:class:`TaskSignatures` is a base of :class:`~celery_gcp.task.Task`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from .canvas import Signature

if TYPE_CHECKING:
    from .task import Task

__all__ = ["TaskSignatures"]


class TaskSignatures:
    """The signatures of a task (see :mod:`celery_gcp.canvas`)."""

    # -- signatures ------------------------------------------------------------------------

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of this task: ``add.s(2, 2)``."""
        return Signature(cast("Task[Any, Any]", self), args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: a parent's result is not passed to it."""
        return Signature(cast("Task[Any, Any]", self), args, kwargs, immutable=True)

    def signature(self, args: Sequence[Any] | None = None,
                  kwargs: Mapping[str, Any] | None = None, **options: Any) -> Signature:
        """A signature with options: ``add.signature((2, 2), countdown=10)``."""
        return Signature(cast("Task[Any, Any]", self), args, kwargs, options)

    subtask = signature

    def map(self, it: Iterable[Any]) -> Signature:
        """One task calling this one for each item: ``add.map([1, 2]).delay()``."""
        from .canvas import xmap

        return xmap(self.s(), it)

    def starmap(self, it: Iterable[Any]) -> Signature:
        """One task calling this one with each item as arguments: ``add.starmap([(1, 2)])``."""
        from .canvas import xstarmap

        return xstarmap(self.s(), it)

    def chunks(self, it: Iterable[Any], n: int) -> Signature:
        """The items in parts of ``n``, each part one task (``add.chunks(pairs, 10)()``)."""
        from .canvas import chunks

        return chunks(self.s(), it, n)
