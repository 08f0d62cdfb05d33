"""The signature: one task call as a dict, and the registry that rebuilds canvas types.

A :class:`Signature` is a dict (``task``, ``args``, ``kwargs``, ``options``, ``subtask_type``,
``immutable``) so it travels as JSON in ``X-Celery-Link`` headers. ``subtask_type`` names its
class in :attr:`Signature.TYPES` (``"chain"``, ``"group"``, or one added with
:meth:`Signature.register_type`), so :meth:`Signature.from_dict` rebuilds what was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..exceptions import TaskArgumentError
from ..message import new_id
from ..result import AsyncResult, ResultBase
from ..utils.functional import maybe_list

if TYPE_CHECKING:
    from ..app import Celery
    from ..message import Message
    from ..task import Task
    from .workflows import chain

__all__ = ["Signature", "maybe_signature", "signature", "subtask"]

S = TypeVar("S", bound="Signature")

# Options that hold lists of signatures: merged by adding, not by replacing.
_LISTS = ("link", "link_error")

class Signature(dict[str, Any]):
    """A task call that can be passed around and made later."""

    #: Signature classes by ``subtask_type``, for :meth:`from_dict`.
    TYPES: ClassVar[dict[str, type[Signature]]] = {}

    def __init__(
        self,
        task: str | Task[Any, Any] | Mapping[str, Any] | None = None,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        type: Task[Any, Any] | None = None,
        subtask_type: str | None = None,
        immutable: bool = False,
        app: Celery | None = None,
        **ex: Any,
    ) -> None:
        self._app = app
        self._type = type
        if isinstance(task, Mapping):
            super().__init__(task)
            return
        if task is not None and not isinstance(task, str):
            self._type = task
            self._app = app or task.app
            task = task.name
        super().__init__(
            task=task,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            options={**(options or {}), **ex},
            subtask_type=subtask_type,
            immutable=immutable,
        )

    @classmethod
    def register_type(cls, name: str | None = None) -> Callable[[type[S]], type[S]]:
        """A class decorator: :meth:`from_dict` builds the class for dicts whose
        ``subtask_type`` is ``name`` (default: the class name)."""

        def register(subclass: type[S]) -> type[S]:
            cls.TYPES[name or subclass.__name__] = subclass
            return subclass

        return register

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None = None) -> Signature:
        """The signature a dict describes, as the class its ``subtask_type`` names.

        Raises :class:`~celery_gcp.exceptions.TaskArgumentError` for a dict that is no
        signature or names an unknown type (and a chord's, with no result store to join it,
        :class:`~celery_gcp.exceptions.NoResultBackendError`).
        """
        if not isinstance(d, Mapping) or not isinstance(d.get("task"), str):
            raise TaskArgumentError(f"expected a signature (task.s(...)), got {d!r}")
        kind = d.get("subtask_type")
        if not kind:
            return Signature(d, app=app)
        target = cls.TYPES.get(kind)
        if target is None:
            raise TaskArgumentError(
                f"signature {d['task']!r} has subtask_type {kind!r}, which is not known here: "
                f"known types are {sorted(cls.TYPES)}; register its class with "
                "@Signature.register_type() in the code that both sends and runs it")
        if target is not cls:  # a registered class may build itself its own way
            return target.from_dict(d, app=app)
        return cls(d, app=app)

    @property
    def task(self) -> str:
        """The task name."""
        return str(self["task"])

    @property
    def args(self) -> list[Any]:
        """Positional arguments."""
        return list(self.get("args") or ())

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments."""
        return dict(self.get("kwargs") or {})

    @property
    def options(self) -> dict[str, Any]:
        """Execution options (``countdown``, ``queue``, ``link``, ...)."""
        return dict(self.get("options") or {})

    @property
    def immutable(self) -> bool:
        """Whether a parent's result is *not* passed to this signature as a callback."""
        return bool(self.get("immutable"))

    @property
    def app(self) -> Celery:
        """The app this signature belongs to (the current app when not bound)."""
        if self._app is None:
            from .._state import get_current_app

            return get_current_app()
        return self._app

    @property
    def type(self) -> Task[Any, Any]:
        """The registered task this signature calls."""
        if self._type is None:
            self._type = self.app.tasks[self.task]
        return self._type

    def clone(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Signature:
        """A copy with ``args`` prepended, ``kwargs`` and ``options`` merged (unless immutable)."""
        merged_args, merged_kwargs = self._merge(args, kwargs)
        fields = {**self, "args": merged_args, "kwargs": merged_kwargs,
                  "options": {**self.options, **options}}
        # A registered type (subtask_type) stays of its class.
        clone = Signature.from_dict(fields, app=self._app) if self.get("subtask_type") else \
            Signature(fields, app=self._app)
        clone._type = self._type
        return clone

    def _merge(self, args: Sequence[Any] | None,
               kwargs: Mapping[str, Any] | None) -> tuple[list[Any], dict[str, Any]]:
        if self.immutable:
            return self.args, self.kwargs
        return [*(args or ()), *self.args], {**self.kwargs, **(kwargs or {})}

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Set execution options in place; returns the signature."""
        if immutable is not None:
            self["immutable"] = immutable
        self["options"] = {**self.options, **options}
        return self

    def set_immutable(self, immutable: bool) -> None:
        """Set whether a parent's result is ignored."""
        self["immutable"] = immutable

    def link(self, callback: Signature) -> Signature:
        """Add a callback, called with this task's result (once, however often it is added);
        returns the callback."""
        return self._append_option("link", callback)

    def link_error(self, errback: Signature) -> Signature:
        """Add an errback, called when this task fails (once, however often it is added);
        returns the errback."""
        return self._append_option("link_error", errback)

    def _append_option(self, key: str, value: Signature) -> Signature:
        """Add ``value`` to the list option ``key`` unless it is there already, as Celery
        does (a callback added twice would otherwise run twice)."""
        items = maybe_list(self.options.get(key))
        if value not in items:
            self["options"] = {**self.options, key: [*items, value]}
        return value

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult[Any]:
        """Send the call with extra ``args`` prepended and ``kwargs`` merged."""
        return self.apply_async(args, kwargs)

    def apply_async(self, args: Sequence[Any] | None = None,
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> AsyncResult[Any]:
        """Send the call; options given here win over the signature's."""
        merged_args, merged_kwargs = self._merge(args, kwargs)
        merged_options = {**self.options, **options}
        task = self._type or self.app.tasks.get(self.task)
        if task is not None:  # a registered task honours eager mode, as in Celery
            return task.apply_async(merged_args, merged_kwargs, **merged_options)
        return self.app.send_task(self.task, merged_args, merged_kwargs, **merged_options)

    def message(self, args: Sequence[Any] | None = None,
                kwargs: Mapping[str, Any] | None = None, **options: Any) -> Message:
        """The Message this signature would send (validated, routed), without sending it."""
        merged_args, merged_kwargs = self._merge(args, kwargs)
        merged_options = {**self.options, **options}
        task = self._type or self.app.tasks.get(self.task)
        if task is not None:
            return task._message(merged_args, merged_kwargs, merged_options.pop("task_id", None),
                                 merged_options.pop("link", None),
                                 merged_options.pop("link_error", None), merged_options)
        return self.app.sender.message(self.task, None, merged_args, merged_kwargs,
                                       merged_options)

    def apply(self, args: Sequence[Any] | None = None,
              kwargs: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Run the call in this process; returns an :class:`EagerResult`."""
        merged_args, merged_kwargs = self._merge(args, kwargs)
        return self.type.apply(merged_args, merged_kwargs, **{**self.options, **options})

    def _prepared(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                  options: Mapping[str, Any],
                  ) -> tuple[Signature, dict[str, Any], ResultBase | None]:
        """What to send for this call: the signature and options (``args`` merged), and the
        result handle chosen up front (``None``: the send's own). A chain sends its first
        step, linked to the rest."""
        return self.clone(args, kwargs) if args or kwargs else self, dict(options), None

    def _freeze(self, parent: ResultBase | None) -> ResultBase:
        """Choose this call's id now (unless it has one); its result, child of ``parent``."""
        task_id = self.options.get("task_id")
        if not task_id:
            task_id = new_id()
            self.set(task_id=task_id)
        return AsyncResult(str(task_id), task_name=self.task, app=self._app, parent=parent)

    def _unrolled(self, options: Mapping[str, Any]) -> list[Signature]:
        """The calls this signature stands for as a member of a group, with ``options`` (the
        group's) merged in: a group stands for its members. Callers only read them, so with
        nothing to merge they are the members themselves."""
        if not options:
            return [self]
        clone = self.clone()
        clone["options"] = merged_options(clone.options, options)
        return [clone]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task function directly, in this process."""
        merged_args, merged_kwargs = self._merge(args, kwargs)
        return self.type(*merged_args, **merged_kwargs)

    def __or__(self, other: Signature) -> chain:  # type: ignore[override]
        from .workflows import chain

        return chain(self, other)

    def __repr__(self) -> str:
        arguments = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task}({', '.join(arguments)})"


def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """Make a :class:`Signature` from a task, a task name or a signature dict (of any canvas
    type: a chain's dict gives a chain)."""
    if isinstance(varies, Signature):
        return varies.clone() if not (args or kwargs) else varies.clone(*args, **kwargs)
    if isinstance(varies, Mapping):
        return Signature.from_dict(varies, app=kwargs.get("app"))
    return Signature(varies, *args, **kwargs)


subtask = signature


def maybe_signature(d: Any, app: Celery | None = None) -> Signature:
    """Turn a signature dict (as it travels in headers) back into a :class:`Signature` of its
    type (:meth:`Signature.from_dict`); a signature is returned as it is."""
    if isinstance(d, Signature):
        if app is not None:
            d._app = app
        return d
    if isinstance(d, Mapping):
        return Signature.from_dict(d, app=app)
    raise TypeError(f"expected a signature, got {d!r}")


def merged_options(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` over it, except that callbacks and errbacks of both are kept."""
    merged = {**base, **extra}
    for key in _LISTS:
        if base.get(key) is not None and extra.get(key) is not None:
            items = maybe_list(base[key])
            merged[key] = items + [s for s in maybe_list(extra[key]) if s not in items]
    return merged

