"""``self.replace(sig)``: a running task hands its place to another signature.

As in Celery, the replacement takes over the running task's id, its callbacks and errbacks,
its parent and root, and its place in a chord header: ``AsyncResult(id)`` of the replaced
task reads the replacement's outcome, and the chain step after it runs after the
replacement. A group is made a chord whose body (``celery.accumulate``) gathers its results,
so the replaced task's result is their list (that needs a result store, as any chord).

On Cloud Tasks the replacement is a new task under the same Celery id, so its Cloud Tasks
name gets the suffix ``-x{nesting}`` (``replaced_task_nesting``, one more for each
replacement of a replacement): the replaced task is still in its queue while it runs. The
name is fixed by the id and the nesting, so a redelivered replaced task that replaces
itself again sends nothing twice (the second create is a duplicate, taken as sent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import Ignore, ImproperlyConfigured
from ..message import REPLACED_NESTING
from .chords import chord
from .signatures import Signature, maybe_signature
from .workflows import chain, group

if TYPE_CHECKING:
    from ..task import Task

__all__ = ["on_replace", "prepare", "replace"]


def prepare(task: Task[Any, Any], sig: Any) -> Signature:
    """The signature that replaces the running ``task``: ``sig`` with the task's id (on the
    step whose result it is), callbacks, errbacks, headers and one more nesting level."""
    request = task.request
    if request.called_directly or request.id is None:
        raise RuntimeError(
            f"{task.name}.replace() was called outside a run of the task: replace() hands a "
            "running task's place to another signature; call it from the task's body")
    given = maybe_signature(sig, app=task.app)
    if not isinstance(given, Signature):
        raise TypeError(f"replace() takes a signature, got {sig!r}")
    if isinstance(given, chain) and not given.tasks:
        raise ImproperlyConfigured("cannot replace a task with an empty chain")
    replacement: Signature = given.clone()
    if isinstance(replacement, group):
        from .. import builtins

        builtins.ensure(task.app)
        accumulate = task.app.tasks[builtins.ACCUMULATE]
        replacement = chord(replacement.tasks, accumulate.s(index=0), app=task.app,
                            **replacement.options)
    headers = dict(request.headers or {})
    nesting = int(headers.get(REPLACED_NESTING) or 0) + 1
    carrier = _result_step(replacement)
    carrier.set(task_id=request.id, headers={
        **(carrier.options.get("headers") or {}), **headers, REPLACED_NESTING: nesting})
    for callback in request.callbacks or ():
        replacement.link(maybe_signature(callback, app=task.app))
    for errback in request.errbacks or ():
        replacement.link_error(maybe_signature(errback, app=task.app))
    return replacement


def replace(task: Task[Any, Any], sig: Any) -> Any:
    """Replace the running ``task`` with ``sig`` (see the module's docstring).

    Eagerly, ``sig`` runs here and its result is returned. Otherwise it is sent and
    :class:`~celery_gcp.exceptions.Ignore` is raised: the replaced run ends without a
    result of its own.
    """
    return task.on_replace(prepare(task, sig))


def on_replace(task: Task[Any, Any], sig: Signature) -> Any:
    """Run ``sig`` here (an eager run: its result) or send it and end the run."""
    request = task.request
    if request.is_eager:
        return sig.apply().get()
    sig.apply_async(parent_id=request.parent_id, root_id=request.root_id,
                    on_duplicate="ignore")
    raise Ignore("Replaced by new task")


def _result_step(sig: Signature) -> Signature:
    """The signature whose result is ``sig``'s: a chain's last step, a chord's body (each
    looked into again)."""
    step = sig
    while True:
        if isinstance(step, chain):
            step = step.tasks[-1]
        elif isinstance(step, chord) and step.body is not None:
            step = step.body
        else:
            return step
