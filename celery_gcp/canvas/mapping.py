"""``task.map(it)``, ``task.starmap(it)`` and ``task.chunks(it, n)``, as Celery builds them.

``xmap`` / ``xstarmap`` are one call of the built-in ``celery.map`` / ``celery.starmap`` task
(:mod:`celery_gcp.builtins`), which calls the task once per item in the worker that runs it;
``chunks`` splits the items into groups of ``n``, each an ``xstarmap``, sent as one group.

Example::

    add.starmap([(1, 1), (2, 2)]).delay()        # one task: [2, 4]
    add.chunks(zip(range(100), range(100)), 10)()  # ten tasks of ten additions each
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import builtins
from .signatures import Signature, maybe_signature
from .workflows import group

if TYPE_CHECKING:
    from ..app import Celery
    from ..result import GroupResult

__all__ = ["chunks", "xmap", "xstarmap"]


def _app_of(task: Signature, app: Celery | None) -> Celery:
    from .._state import get_current_app

    found = app or task._app or get_current_app()
    builtins.ensure(found)  # sending or running it eagerly needs the built-in task here
    return found


class _Mapping(Signature):
    """A call of one built-in task over the items of ``it``."""

    _builtin: str

    def __init__(self, task: Mapping[str, Any], it: Iterable[Any], app: Celery | None = None,
                 **options: Any) -> None:
        sig = maybe_signature(task, app=app)
        found = _app_of(sig, app)
        super().__init__(self._builtin, (), {"task": dict(sig), "it": [list(i) if isinstance(
            i, tuple) else i for i in it]}, options, subtask_type=type(self).__name__,
            immutable=True, app=found)  # as Celery's: a parent's result is not prepended

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None = None) -> Signature:
        """Rebuild from the dict form (``kwargs``: ``task``, ``it``)."""
        kwargs = d.get("kwargs") or {}
        return cls(kwargs["task"], kwargs["it"], app=app, **(d.get("options") or {}))


@Signature.register_type()
class xmap(_Mapping):
    """``task.map(it)``: ``[task(item) for item in it]`` in one task."""

    _builtin = builtins.MAP


@Signature.register_type()
class xstarmap(_Mapping):
    """``task.starmap(it)``: ``[task(*item) for item in it]`` in one task."""

    _builtin = builtins.STARMAP


@Signature.register_type()
class chunks(Signature):
    """``task.chunks(it, n)``: the items in parts of ``n``, each part one ``xstarmap`` task,
    all sent as one group (so the parts run in parallel)."""

    def __init__(self, task: Mapping[str, Any], it: Iterable[Any], n: int,
                 app: Celery | None = None, **options: Any) -> None:
        if int(n) < 1:
            raise ValueError(f"chunks(): n must be at least 1, got {n!r}")
        sig = maybe_signature(task, app=app)
        super().__init__("celery.chunks", (), {"task": dict(sig), "it": [list(i) for i in it],
                                               "n": int(n)},
                         options, subtask_type="chunks", immutable=True, app=_app_of(sig, app))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None = None) -> Signature:
        """Rebuild from the dict form (``kwargs``: ``task``, ``it``, ``n``)."""
        kwargs = d.get("kwargs") or {}
        return cls(kwargs["task"], kwargs["it"], kwargs["n"], app=app,
                   **(d.get("options") or {}))

    def group(self) -> group:
        """The group of ``xstarmap`` parts this stands for."""
        kwargs = self.kwargs
        items = iter(kwargs["it"])
        parts = iter(lambda: list(itertools.islice(items, kwargs["n"])), [])
        return group([xstarmap(kwargs["task"], part, app=self._app) for part in parts],
                     app=self._app, **self.options)

    def apply_async(self, args: Sequence[Any] | None = None,  # type: ignore[override]
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> GroupResult:
        """Send the parts as one group; its :class:`GroupResult`."""
        return self.group().apply_async(**options)

    def apply(self, args: Sequence[Any] | None = None,
              kwargs: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Run every part here."""
        return self.group().apply(**options)

    def __call__(self, *args: Any, **kwargs: Any) -> GroupResult:
        """Send the parts, as Celery's ``chunks(...)()`` does."""
        return self.apply_async()
