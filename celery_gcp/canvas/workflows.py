"""Chains and groups: signatures whose members travel with them.

As in Celery, a chain's or group's dict holds its members in ``kwargs["tasks"]`` (with
``subtask_type`` ``"chain"`` / ``"group"``), so one used as a callback (``link=group(...)``),
as a chain step or as a group member is rebuilt whole by the worker
(:meth:`Signature.from_dict`). A group followed by another step is a chord
(:mod:`.chords`), which needs a result store.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import PartialSendError, TaskArgumentError
from ..message import GROUP, GROUP_INDEX, new_id
from ..result import AsyncResult, GroupResult, ResultBase
from ..utils.functional import maybe_list
from .signatures import Signature, maybe_signature, merged_options

if TYPE_CHECKING:
    from ..app import Celery
    from ..transport.base import SendOptions

__all__ = ["as_member", "chain", "group", "last_step", "result_step", "send_members"]


class _Workflow(Signature):
    """What chains and groups share: members in ``kwargs["tasks"]``, rebuilt from dicts."""

    _name: ClassVar[str]
    _kind: ClassVar[str]

    def __init__(self, *tasks: Signature | Iterable[Signature], app: Celery | None = None,
                 **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], Mapping):
            tasks = tuple(tasks[0])  # one iterable of signatures (a generator too)
        members = self._members([maybe_signature(t, app=app) for t in tasks])
        super().__init__(self._name, (), {"tasks": members}, options, subtask_type=self._kind,
                         app=app or (members[0]._app if members else None))

    def _members(self, members: list[Signature]) -> list[Signature]:
        return members

    @property
    def tasks(self) -> list[Signature]:
        """The members, in order (the list itself: changing it changes this signature)."""
        tasks: list[Signature] = self["kwargs"]["tasks"]
        return tasks

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None = None) -> Signature:
        """Rebuild a chain or group, and each of its members, from its dict form."""
        kwargs = d.get("kwargs")
        tasks = kwargs.get("tasks") if isinstance(kwargs, Mapping) else None
        if not isinstance(tasks, list | tuple):
            raise TaskArgumentError(
                f"signature {d.get('task')!r} ({d.get('subtask_type')}) must hold its members "
                f"as a list in kwargs['tasks'], got {tasks!r}")
        options = d.get("options") or {}
        rebuilt = cls(*[maybe_signature(t, app=app) for t in tasks], app=app, **options)
        rebuilt["immutable"] = bool(d.get("immutable"))
        return rebuilt

    def _copy(self, members: list[Signature], options: Mapping[str, Any]) -> Signature:
        copy = type(self)(*members, app=self._app, **{**self.options, **options})
        copy["immutable"] = self.immutable
        return copy

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Send the workflow, as Celery's ``chain(...)()`` / ``group(...)()`` do."""
        return self.apply_async(args, kwargs)


@Signature.register_type(name="chain")
class chain(_Workflow):
    """Run signatures one after the other, each result passed to the next.

    ``apply_async`` sends the first step with the rest attached as ``link`` callbacks, so each
    worker sends the next step when its own succeeds; ``apply`` runs every step here. A
    chain inside a chain is spliced in; a group as the last step gets the result before it
    (each member); a group followed by another step is a chord (joined on every member).

    Example::

        chain(add.s(2, 2), mul.s(4)).apply_async()      # mul(4, 4) after add
    """

    _name, _kind = "celery.chain", "chain"

    def _members(self, members: list[Signature]) -> list[Signature]:
        steps: list[Signature] = []
        for member in members:
            steps.extend(member._unchained() if isinstance(member, chain) else [member])
        if not steps:
            raise ValueError("chain() needs at least one signature")
        from .chords import chord

        joined: list[Signature] = []
        for step in steps:  # a group followed by a step is a chord, as in Celery
            if joined and isinstance(joined[-1], group) and not isinstance(step, group):
                step = chord(joined.pop(), step, app=step._app)
            joined.append(step)
        return joined

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None = None) -> Signature:
        """Rebuild a chain and its steps from its dict form (a chord step, from a group
        followed by a step, needs a result store: refused here, where it is sent)."""
        from .chords import chord, joinable

        rebuilt = super().from_dict(d, app=app)
        assert isinstance(rebuilt, chain)
        for step in rebuilt.tasks:
            if isinstance(step, chord):
                joinable(app, repr(step))
        return rebuilt

    def _unchained(self) -> list[Signature]:
        """The steps of this chain spliced into another: its callback on its last step, its
        errbacks on every step, its other options on its first step (task_id: the last)."""
        steps, options = self._steps(None, None, {})
        if options:
            steps[0].set(**options)
        return steps

    def _steps(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
               options: Mapping[str, Any]) -> tuple[list[Signature], dict[str, Any]]:
        """Copies of the steps ready to run, and the options left for the first one.

        As in Celery: ``args`` go to the first step; ``task_id`` and ``link`` to the last;
        ``link_error`` to every step (whichever fails calls it).
        """
        options = merged_options(self.options, options)
        task_id = options.pop("task_id", None)
        link = maybe_list(options.pop("link", None))
        link_error = maybe_list(options.pop("link_error", None))
        if self.immutable:
            args = kwargs = None
        steps = [step.clone() for step in self.tasks]
        steps[0] = steps[0].clone(args, kwargs)
        if task_id:
            steps[-1].set(task_id=task_id)
        for callback in link:
            steps[-1]._append_option("link", maybe_signature(callback))
        for errback in link_error:
            for step in steps:
                step._append_option("link_error", maybe_signature(errback))
        return steps, options

    def _prepared(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                  options: Mapping[str, Any]) -> tuple[Signature, dict[str, Any], ResultBase]:
        """The first step, linked to the next (and so on), its options, and the last step's
        result: every id is chosen up front, each result's ``parent`` is the step before."""
        steps, options = self._steps(args, kwargs, options)
        result: ResultBase | None = None
        for step in steps:
            result = step._freeze(result)
        for step, following in itertools.pairwise(steps):
            step._append_option("link", following)
        assert result is not None  # a chain has a step
        return steps[0], options, result

    def _freeze(self, parent: ResultBase | None) -> ResultBase:
        if self.options.get("task_id"):
            self.tasks[-1].set(task_id=self.options["task_id"])
        result = parent
        for step in self.tasks:
            result = step._freeze(result)
        assert result is not None
        return result

    def _unrolled(self, options: Mapping[str, Any]) -> list[Signature]:
        if len(self.tasks) > 1:
            return super()._unrolled(options)
        steps, rest = self._steps(None, None, options)  # a chain of one step is that step
        return steps[0]._unrolled(rest)

    def apply_async(self, args: Sequence[Any] | None = None,
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Send the first step; each step sends the next when it succeeds.

        Returns the last step's result handle (its id is chosen now, or is ``task_id``),
        whose ``parent`` is the step before it, as in Celery; a chain ending in a group
        returns the group's result. With ``task_always_eager`` every step runs here.
        """
        if self.app.sender.eager():
            return self.apply(args, kwargs, **options)
        first, options, result = self._prepared(args, kwargs, options)
        sent = first.apply_async(**options)
        return sent if len(self.tasks) == 1 else result

    def apply(self, args: Sequence[Any] | None = None,
              kwargs: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Run every step in this process; returns the last step's :class:`EagerResult`."""
        steps, options = self._steps(args, kwargs, options)
        result: Any = None
        for step in steps:
            previous = result
            result = step.apply(None if previous is None else (previous.get(),), **options)
            result.parent = previous
        return result

    def clone(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Signature:
        """A copy, each step copied; ``args`` and ``kwargs`` go to the first step."""
        steps = [step.clone() for step in self.tasks]
        if not self.immutable and (args or kwargs):
            steps[0] = steps[0].clone(args, kwargs)
        return self._copy(steps, options)

    def __or__(self, other: Signature) -> chain:  # type: ignore[override]
        return chain(self, other, app=self._app)

    def __repr__(self) -> str:
        return " | ".join(repr(s) for s in self.tasks)


@Signature.register_type()
class group(_Workflow):
    """Several signatures sent together; the result is a :class:`GroupResult`, in order.

    A group inside a group stands for its members; a chain member is sent as its first step,
    linked to the rest. The group's own options apply to every member.
    """

    _name, _kind = "celery.group", "group"

    def _unrolled(self, options: Mapping[str, Any]) -> list[Signature]:
        own = merged_options(self.options, options)
        own.pop("task_id", None)  # the group's own id, not its members'
        return [member for task in self.tasks for member in task._unrolled(own)]

    def _freeze(self, parent: ResultBase | None) -> ResultBase:
        results: list[Any] = []
        for task in self.tasks:
            result = task._freeze(parent)
            results.extend(result.results if isinstance(result, GroupResult) else [result])
        # A group's result has an id, as Celery's, so save() / restore() work on it; it
        # travels with the group, so a group a worker sends later (a chain's step) uses it.
        group_id = self.options.get("task_id") or new_id()
        self.set(task_id=group_id)
        frozen = GroupResult(group_id, results)
        frozen.parent = parent
        return frozen

    def apply_async(self, args: Sequence[Any] | None = None,  # type: ignore[override]
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> GroupResult:
        """Send every member in one bulk send (``args`` prepended to each).

        Results come back in order. If any message could not be sent, the others still are,
        and :class:`~celery_gcp.exceptions.PartialSendError` reports which failed and why.
        With ``task_always_eager`` every member runs here.
        """
        from ..sending import send_options

        app = self.app
        if app.sender.eager():
            return self.apply(args, kwargs, **options)
        # Its own id, chosen here when not given, as Celery's (save() / restore() need one);
        # each member carries it with its index (self.request.group / group_index).
        group_id = str(options.get("task_id") or self.options.get("task_id") or new_id())
        members = [as_member(member, group_id, index)
                   for index, member in enumerate(self._unrolled(options))]
        if not members:
            return GroupResult(group_id, [])
        if self.immutable:
            args = kwargs = None
        prepared = [member._prepared(args, kwargs, {}) for member in members]
        slots = send_members(app, prepared, send_options(merged_options(self.options, options)))
        return GroupResult(group_id, slots)

    def apply(self, args: Sequence[Any] | None = None,
              kwargs: Mapping[str, Any] | None = None, **options: Any) -> GroupResult:
        """Run every member in this process."""
        group_id = options.get("task_id") or self.options.get("task_id")
        if self.immutable:
            args = kwargs = None
        return GroupResult(group_id, [member.apply(args, kwargs)
                                      for member in self._unrolled(options)])

    def set_immutable(self, immutable: bool) -> None:
        """Set whether the result before the group is ignored, for every member (as Celery)."""
        super().set_immutable(immutable)
        for task in self.tasks:
            task.set_immutable(immutable)

    def link(self, callback: Signature) -> Signature:
        """As in Celery: called after the *first* member only, without its result (an
        immutable copy): a group has no single result, and joining on all is a chord."""
        if not self.tasks:
            raise TaskArgumentError("an empty group has no member to link a callback to")
        return self.tasks[0].link(maybe_signature(callback).clone().set(immutable=True))

    def link_error(self, errback: Signature) -> Signature:
        """Add an errback to every member (whichever fails calls it); returns the errback."""
        for task in self.tasks:
            task.link_error(maybe_signature(errback).clone())
        return errback

    def clone(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Signature:
        """A copy, each member copied (``args`` and ``kwargs`` given to each)."""
        if self.immutable:
            args = kwargs = None
        return self._copy([task.clone(args, kwargs) for task in self.tasks], options)

    def __or__(self, other: Signature) -> Signature:  # type: ignore[override]
        """``group | step`` is a chord, as in Celery (``group | group``: a chain)."""
        if isinstance(other, group):
            return chain(self, other, app=self._app)
        from .chords import chord

        return chord(self, other, app=self._app)

    def __repr__(self) -> str:
        return f"group({self.tasks!r})"


def last_step(member: Signature) -> Signature:
    """``member`` itself, or a chain's last step (a nested chain's, in turn)."""
    step = member
    while isinstance(step, chain):
        step = step.tasks[-1]
    return step


def result_step(member: Signature) -> Signature | None:
    """The step of a group member whose result is the member's: its :func:`last_step` (as
    Celery marks it); ``None`` for one ending in a group or chord, whose result is not one
    task's."""
    from .chords import chord

    step = last_step(member)
    return None if isinstance(step, group | chord) else step


def as_member(member: Signature, group_id: str, index: int,
              headers: Mapping[str, Any] | None = None) -> Signature:
    """A copy of ``member`` whose :func:`result_step` carries the group's id, the member's
    index and ``headers`` in its message headers (a member ending in a group or chord is
    left as it is: no one task stands for it)."""
    copy = member.clone()
    step = result_step(copy)
    if step is not None:
        step.set(headers={**(step.options.get("headers") or {}), GROUP: group_id,
                          GROUP_INDEX: index, **(headers or {})})
    return copy


def send_members(app: Celery, prepared: Sequence[tuple[Signature, dict[str, Any], Any]],
                 options: SendOptions | None) -> list[Any]:
    """Send prepared members (``_prepared``'s triples) in one bulk send; their results in
    order (a chain member: its last step's). If any could not be sent the others still are,
    and :class:`~celery_gcp.exceptions.PartialSendError` says which failed and why."""
    messages = [first.message(**first_options) for first, first_options, _ in prepared]
    outcomes = app.sender.send_many(messages, options)
    slots: list[Any] = [
        outcome if isinstance(outcome, Exception)
        else frozen if frozen is not None  # a chain member: its last step's result
        else AsyncResult(outcome.task_id, task_name=message.task, app=app,
                         location=outcome.name)
        for message, outcome, (_, _, frozen) in zip(messages, outcomes, prepared, strict=True)
    ]
    if any(isinstance(slot, Exception) for slot in slots):
        raise PartialSendError(slots)
    return slots
