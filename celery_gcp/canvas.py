"""Signatures and simple workflows, mirroring :mod:`celery.canvas`.

A :class:`Signature` is a dict (``task``, ``args``, ``kwargs``, ``options``, ``subtask_type``,
``immutable``) so it travels as JSON in ``X-Celery-Link`` headers. ``chain`` is built from
``link`` callbacks; ``group`` sends each of its signatures.

Example::

    add.s(2, 2).delay()
    chain(add.s(2, 2), mul.s(4)).apply_async()      # mul(4, 4) after add
    add.s(1, 1).set(countdown=10).apply_async()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .exceptions import PartialSendError
from .message import new_id
from .result import AsyncResult, GroupResult

if TYPE_CHECKING:
    from .app import Celery
    from .message import Message
    from .task import Task

__all__ = ["GroupResult", "Signature", "chain", "group", "maybe_signature", "signature"]


class Signature(dict[str, Any]):
    """A task call that can be passed around and made later."""

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
            from ._state import get_current_app

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
        return Signature(
            self.task, merged_args, merged_kwargs, {**self.options, **options},
            type=self._type, subtask_type=self.get("subtask_type"),
            immutable=self.immutable, app=self._app,
        )

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
        """Add a callback, called with this task's result; returns the callback."""
        self["options"] = {**self.options, "link": [*_as_list(self.options.get("link")), callback]}
        return callback

    def link_error(self, errback: Signature) -> Signature:
        """Add an errback, called when this task fails; returns the errback."""
        options = self.options
        self["options"] = {**options, "link_error": [*_as_list(options.get("link_error")), errback]}
        return errback

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

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task function directly, in this process."""
        merged_args, merged_kwargs = self._merge(args, kwargs)
        return self.type(*merged_args, **merged_kwargs)

    def __or__(self, other: Signature) -> chain:  # type: ignore[override]
        return chain(self, other)

    def __repr__(self) -> str:
        arguments = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task}({', '.join(arguments)})"


class chain(Signature):
    """Run signatures one after the other, each result passed to the next.

    ``apply_async`` sends the first step with the rest attached as ``link`` callbacks, so each
    worker sends the next step when its own succeeds; ``apply`` runs every step here.

    Example::

        chain(add.s(2, 2), mul.s(4)).apply_async()      # mul(4, 4) after add
    """

    def __init__(self, *tasks: Signature | Iterable[Signature], app: Celery | None = None) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], Mapping):
            tasks = tuple(tasks[0])
        steps = [maybe_signature(t) for t in tasks]
        if not steps:
            raise ValueError("chain() needs at least one signature")
        super().__init__("celery.chain", app=app or steps[0]._app, subtask_type="chain")
        self.steps = steps

    def apply_async(self, args: Sequence[Any] | None = None,
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> AsyncResult[Any]:
        """Send the first step; each step sends the next when it succeeds.

        Returns the last step's result handle (its id is chosen now), whose ``parent`` is the
        step before it, as in Celery. With ``task_always_eager`` every step runs here.
        """
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs, **options)  # type: ignore[no-any-return]
        steps = [step.clone() for step in self.steps]
        result: AsyncResult[Any] | None = None
        for step in steps:
            step.set(task_id=step.options.get("task_id") or new_id())
            result = AsyncResult(step.options["task_id"], task_name=step.task, parent=result)
        for step, following in zip(reversed(steps[:-1]), reversed(steps[1:]), strict=True):
            step.link(following)
        steps[0].clone(args, kwargs).apply_async(**options)
        assert result is not None
        return result

    def apply(self, args: Sequence[Any] | None = None,
              kwargs: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Run every step in this process; returns the last step's :class:`EagerResult`."""
        result = self.steps[0].apply(args, kwargs, **options)
        for step in self.steps[1:]:
            result = step.apply((result.get(),), **options)
        return result

    def __call__(self, *args: Any, **kwargs: Any) -> AsyncResult[Any]:
        """Send the chain, as Celery's ``chain(...)()`` does."""
        return self.apply_async(args, kwargs)

    def __or__(self, other: Signature) -> chain:  # type: ignore[override]
        return chain(*self.steps, *(other.steps if isinstance(other, chain) else [other]))

    def __repr__(self) -> str:
        return " | ".join(repr(s) for s in self.steps)


class group(Signature):
    """Several signatures sent together; the result is a :class:`GroupResult`, in order."""

    def __init__(self, *tasks: Signature | Iterable[Signature], app: Celery | None = None) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], Mapping):
            tasks = tuple(tasks[0])
        self.tasks = [maybe_signature(t) for t in tasks]
        super().__init__("celery.group", app=app, subtask_type="group")

    def apply_async(self, args: Sequence[Any] | None = None,  # type: ignore[override]
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> GroupResult:
        """Send every signature in one bulk send (``args`` prepended to each).

        Results come back in order. If any message could not be sent, the others still are,
        and :class:`~celery_gcp.exceptions.PartialSendError` reports which failed and why.
        With ``task_always_eager`` every signature runs here.
        """
        from .sending import send_options

        if not self.tasks:
            return GroupResult([])
        app = self.tasks[0].app
        if app.sender.eager():
            return self.apply(args, kwargs, **options)
        messages = [s.message(args, kwargs, **options) for s in self.tasks]
        outcomes = app.sender.send_many(messages, send_options(options))
        slots: list[AsyncResult[Any] | Exception] = [
            outcome if isinstance(outcome, Exception) else AsyncResult(
                outcome.task_id, task_name=message.task, app=app, location=outcome.name)
            for message, outcome in zip(messages, outcomes, strict=True)
        ]
        failed = [slot for slot in slots if isinstance(slot, Exception)]
        if failed:
            raise PartialSendError(slots)
        return GroupResult([slot for slot in slots if isinstance(slot, AsyncResult)])

    def apply(self, args: Sequence[Any] | None = None,
              kwargs: Mapping[str, Any] | None = None, **options: Any) -> GroupResult:
        """Run every signature in this process."""
        return GroupResult([s.apply(args, kwargs, **options) for s in self.tasks])

    def __call__(self, *args: Any, **kwargs: Any) -> GroupResult:
        """Send the group, as Celery's ``group(...)()`` does."""
        return self.apply_async(args, kwargs)

    def __repr__(self) -> str:
        return f"group({self.tasks!r})"


def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """Make a :class:`Signature` from a task, a task name or a signature dict."""
    if isinstance(varies, Signature):
        return varies.clone() if not (args or kwargs) else varies.clone(*args, **kwargs)
    return Signature(varies, *args, **kwargs)


subtask = signature


def maybe_signature(d: Any, app: Celery | None = None) -> Signature:
    """Turn a signature dict (as it travels in headers) back into a :class:`Signature`."""
    if isinstance(d, Signature):
        return d
    if isinstance(d, Mapping):
        return Signature(d, app=app)
    raise TypeError(f"expected a signature, got {d!r}")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]
