"""The chord: a group (the header) whose results, in order, are the first argument of a body.

There is no always-on process to wait for the header: each header member carries the chord's
description (:data:`~celery_gcp.results.chords.CHORD_HEADER` in its message headers), counts
itself done in the result store when it finishes, and the member that completes the count
sends the body (:func:`celery_gcp.results.chords.part_done`). So a chord needs a result store
(``result_backend``); without one it is refused at the call site. Eager runs (``apply()``,
``task_always_eager``) need none: the header runs here, then the body, as in Celery.

Example::

    chord([add.s(1, 1), add.s(2, 2)])(tsum.s())          # tsum([2, 4])
    (group(add.s(1, 1), add.s(2, 2)) | tsum.s()).delay()  # the same chord, in a chain
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import NoResultBackendError, TaskArgumentError
from ..message import new_id
from ..result import GroupResult, ResultBase
from ..utils.functional import maybe_list
from .signatures import Signature, maybe_signature, merged_options
from .workflows import as_member, group, last_step, send_members

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["chord", "joinable"]

_NO_STORE = (
    "{what} is a chord: its header's members count themselves done in a result store and the "
    "last one sends the body, so a chord needs one. Set result_backend (for example "
    "'redis://HOST:6379/0' for Memorystore, 'db+postgresql://...' for Cloud SQL; "
    "'memory://' in tests), or run the group as the last step instead."
)


def joinable(app: Celery | None, what: str) -> Celery:
    """``app`` (default: the current app) if it can run chords; else
    :class:`~celery_gcp.exceptions.NoResultBackendError`. A chord rebuilt from its dict (a
    link, a chain step) is checked here, so it is refused where it is sent."""
    if app is None:
        from .._state import get_current_app

        app = get_current_app()
    if app.backend is None and not app.sender.eager():
        raise NoResultBackendError(_NO_STORE.format(what=what))
    return app


@Signature.register_type()
class chord(Signature):
    """A header group whose results, in order, are passed to ``body`` (Celery's ``chord``).

    ``chord(header)(body)`` and ``chord(header, body).apply_async()`` send the header (one
    bulk send) and return the body's :class:`AsyncResult`, whose ``parent`` is the header's
    :class:`GroupResult` (saved in the store). The body is sent once, by the header member
    that finishes last; if a member fails, the body is not run: the chord's result is a
    ``FAILURE`` with :class:`~celery_gcp.exceptions.ChordError`, given to the body's errbacks.
    """

    def __init__(self, header: Signature | Iterable[Any] | Mapping[str, Any],
                 body: Signature | Mapping[str, Any] | None = None, task: str = "celery.chord",
                 args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                 app: Celery | None = None, **options: Any) -> None:
        if isinstance(header, Mapping) and header.get("subtask_type") == "group":
            header = maybe_signature(header, app=app)
        members = header.tasks if isinstance(header, group) else [
            maybe_signature(t, app=app) for t in header]
        rebuilt = None if body is None else maybe_signature(body, app=app)
        super().__init__(task, args, {"header": members, "body": rebuilt, **(kwargs or {})},
                         options, subtask_type="chord",
                         app=app or (members[0]._app if members else None))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], app: Celery | None = None) -> Signature:
        """Rebuild a chord (its header members and body) from its dict form."""
        kwargs = d.get("kwargs")
        if not isinstance(kwargs, Mapping) or not isinstance(kwargs.get("header"), list | tuple):
            raise TaskArgumentError(
                f"chord {d.get('task')!r} must hold its header as a list in "
                f"kwargs['header'], got {kwargs!r}")
        app = joinable(app, f"signature {d.get('task')!r}")
        rebuilt = cls(kwargs["header"], kwargs.get("body"), app=app, **(d.get("options") or {}))
        rebuilt["immutable"] = bool(d.get("immutable"))
        return rebuilt

    @property
    def tasks(self) -> list[Signature]:
        """The header's members, in order."""
        tasks: list[Signature] = self["kwargs"]["header"]
        return tasks

    @property
    def body(self) -> Signature | None:
        """The body: called with the list of the header's results."""
        body: Signature | None = self["kwargs"].get("body")
        return body

    def _with_body(self, body: Signature | None) -> Signature:
        if body is not None:
            return maybe_signature(body, app=self._app)
        if self.body is None:
            raise TaskArgumentError("this chord has no body: call chord(header)(body)")
        return self.body

    def __call__(self, body: Signature | None = None, **options: Any) -> Any:
        """``chord(header)(body)``: send the chord with ``body`` (or its own)."""
        return self.apply_async((), body=body, **options)

    # -- options that belong to the body ---------------------------------------------------

    def _append_option(self, key: str, value: Signature) -> Signature:
        """Callbacks and errbacks go to the body, as in Celery (a chord's result is its
        body's)."""
        if self.body is None:
            return super()._append_option(key, value)
        return self.body._append_option(key, value)

    def set_immutable(self, immutable: bool) -> None:
        """Set whether the result before the chord is ignored, for every header member."""
        super().set_immutable(immutable)
        for task in self.tasks:
            task.set_immutable(immutable)

    def clone(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Signature:
        """A copy, header members and body copied (``args`` given to each member)."""
        if self.immutable:
            args = kwargs = None
        copy = chord([t.clone(args, kwargs) for t in self.tasks],
                     None if self.body is None else self.body.clone(), app=self._app,
                     **{**self.options, **options})
        copy["immutable"] = self.immutable
        return copy

    # -- freezing and sending --------------------------------------------------------------

    def _freeze(self, parent: ResultBase | None) -> ResultBase:
        """Choose every id now (the header's group id, its members', the body's), in place;
        returns the body's result, whose parent is the header's group result."""
        body = self._with_body(None)
        group_id = self.options.get("group_id") or new_id()
        self.set(group_id=group_id)
        header = group(self.tasks, app=self._app)._freeze(parent)
        assert isinstance(header, GroupResult)
        header.id = str(group_id)
        if self.options.get("task_id"):  # the chord's id is its body's, as in Celery
            body.set(task_id=self.options["task_id"])
        return body._freeze(header)

    def apply_async(self, args: Sequence[Any] | None = None,
                    kwargs: Mapping[str, Any] | None = None, body: Signature | None = None,
                    **options: Any) -> Any:
        """Send the header's members in one bulk send; returns the body's result.

        ``args`` are prepended to each member's (a chord in a chain gets the step before's
        result); ``task_id``, ``link`` and ``link_error`` are the body's, the other options
        every member's. With ``task_always_eager`` it runs here. Without a result store:
        :class:`~celery_gcp.exceptions.NoResultBackendError`.
        """
        from ..results.chords import CHORD_HEADER, describe
        from ..sending import send_options

        app = self.app
        if app.sender.eager():
            return self.apply(args, kwargs, body=body, **options)
        store = app.backend
        if store is None:
            raise NoResultBackendError(_NO_STORE.format(what=repr(self)))
        own = merged_options(self.options, options)
        fixed = {k: own.pop(k) for k in ("group_id", "task_id") if own.get(k)}
        sig = chord([t.clone(args, kwargs) for t in self.tasks] if not self.immutable
                    else [t.clone() for t in self.tasks],
                    self._with_body(body).clone(), app=app, **fixed)
        assert sig.body is not None
        for key in ("link", "link_error"):
            for callback in maybe_list(own.pop(key, None)):
                sig.body._append_option(key, maybe_signature(callback, app=app))
        result = sig._freeze(None)
        header = _header_of(result)
        members = group(sig.tasks, app=app)._unrolled(own)
        ids = [member.id for member in header.results]
        if not members:
            raise TaskArgumentError("a chord needs at least one header member")
        from ..results.layer import expires_of

        store.save_group(str(header.id), ids, expires_of(app))
        for member in members:
            _check_counted(member)  # refused before any is sent
        marked = [as_member(member, str(header.id), index, {CHORD_HEADER: description})
                  for index, (member, description) in enumerate(
                      zip(members, describe(str(header.id), ids, sig.body), strict=True))]
        send_members(app, [m._prepared(None, None, {}) for m in marked], send_options(own))
        return result

    def apply(self, args: Sequence[Any] | None = None,
              kwargs: Mapping[str, Any] | None = None, body: Signature | None = None,
              propagate: bool = True, **options: Any) -> Any:
        """Run the header here, then the body with its results (a failing member raises
        unless ``propagate=False``), as Celery's eager chord."""
        body_sig = self._with_body(body)
        header = group(self.tasks, app=self._app).apply(args, kwargs)
        values = header.get(propagate=propagate)
        result = body_sig.apply((values,), **options)
        result.parent = header
        return result

    def __repr__(self) -> str:
        body = self.body
        return f"chord({self.tasks!r}){'' if body is None else f'({body!r})'}"


def _header_of(result: ResultBase) -> GroupResult:
    """The header's group result above a frozen body's result (a chain body: its first)."""
    node: Any = result
    while not isinstance(node, GroupResult):
        node = node.parent
    return node


def _check_counted(member: Signature) -> None:
    """Refuse a header member whose end cannot count it done: one ending in a group or a
    chord, whose result is not one task's (a chain is counted at its last step)."""
    last = last_step(member)
    if not isinstance(last, group | chord):
        return
    raise TaskArgumentError(
        f"chord header member {member!r} ends in a {type(last).__name__}, whose result is "
        "not one task's: make it a chord of its own and chain it, or flatten it")
