"""Chords without an always-on process: the header task that completes the set sends the body.

Contract (the result layer calls it; the chord machinery fills it in):

* a chord header member's message carries :data:`CHORD_HEADER` in ``Message.headers``: a JSON
  object naming the chord (``id``, the member's ``index``, the header ``size``, the ``body``
  signature, the ordered member ``task_ids``);
* when such a member finishes (stored as SUCCESS or FAILURE), the result layer calls
  :func:`part_done` after its meta is stored.

Cloud Tasks delivers at least once, so :func:`part_done` is safe to call again for the same
member: the store counts each index once (``chord_part_done``), and the body is sent as a
*named* task (its id chosen when the chord was sent, so every member names the same one):
whichever calls reach the count, Cloud Tasks creates it once (a second create is
``ALREADY_EXISTS``, taken as sent). A chord whose header had a failing member is failed once
(a store claim): the body's result is a ``FAILURE`` with :class:`ChordError`, which its
errbacks get, as Celery does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import states
from ..exceptions import ChordError, MessageDecodeError

if TYPE_CHECKING:
    from ..app import Celery
    from ..canvas import Signature
    from ..context import Context
    from ..message import Message
    from .store import Meta, ResultStore

__all__ = ["CHORD_HEADER", "add", "body_of", "describe", "part_done"]

logger = logging.getLogger("celery_gcp.chord")

#: The ``Message.headers`` key of a chord header member's chord description.
CHORD_HEADER = "celery_gcp_chord"


def describe(chord_id: str, task_ids: Sequence[str], body: Signature) -> list[dict[str, Any]]:
    """The :data:`CHORD_HEADER` description of each member of a header, in order."""
    ids, size, body_dict = list(task_ids), len(task_ids), dict(body)
    return [{"id": chord_id, "index": index, "size": size, "task_ids": ids, "body": body_dict}
            for index in range(size)]


def part_done(app: Celery, store: ResultStore, message: Message, state: str,
              result: Any) -> None:
    """Count the member of ``message`` done; the one that completes the header sends the
    body (a failed member fails the chord: ``ChordError`` to the body's errbacks).

    A message that is no chord member is left alone. Safe to call again for one member.
    """
    description = message.headers.get(CHORD_HEADER)
    if description is None:
        return
    chord_id, index, size, task_ids, body = _fields(description,
                                                    f"task {message.task}[{message.id}]")
    from .layer import expires_of

    expires = expires_of(app)
    done = store.chord_part_done(chord_id, index, expires)
    if done < size:
        return
    # Members added by add_to_chord() are added before their adder counts itself done, so
    # once every member known here is counted, none is still to be added.
    added = store.chord_added(chord_id)
    if done < size + len(added):
        return
    task_ids = task_ids + added
    metas = store.get_metas(task_ids)
    failure = _failure(task_ids, metas)
    from ..canvas import maybe_signature

    body_sig = maybe_signature(body, app=app)
    if failure is not None:
        if store.claim(f"chord-failed:{chord_id}", expires):
            _fail(app, store, body_sig, failure, expires)
        return
    values = [meta["result"] for meta in metas if meta is not None]
    # The body's ids were chosen when the chord was sent: a second send is a duplicate name.
    body_sig.apply_async((values,), on_duplicate="ignore", parent_id=message.id,
                         root_id=message.root_id)


def add(app: Celery, store: ResultStore, request: Context, sig: Signature,
        lazy: bool = False) -> Any:
    """``self.add_to_chord(sig)``: make ``sig`` a member of the chord the running task is a
    header member of; the body then waits for it and gets its result after the others'.

    Its id is fixed by the adding run and the call's place in it, so a redelivered adder
    adds (and sends) the same member once. Returns the sent result, or ``sig`` if ``lazy``.
    """
    description = (request.headers or {}).get(CHORD_HEADER)
    if description is None:
        raise ValueError(
            f"add_to_chord(): the running task {request.task}[{request.id}] is not a member of "
            "a chord's header (chord(header)(body) sends its members with the chord)")
    chord_id, _index, size, _ids, _body = _fields(description,
                                                  f"task {request.task}[{request.id}]")
    from ..canvas import Signature as _Signature
    from ..canvas import maybe_signature
    from .layer import expires_of

    member = maybe_signature(sig, app=app)
    if type(member) is not _Signature:
        raise TypeError(
            f"add_to_chord() takes one task's signature, got {member!r}: a chain or group "
            "has no single result to count; add its tasks one by one")
    member = member.clone()
    calls = request.get("_added_to_chord", 0)
    request.update(_added_to_chord=calls + 1)
    task_id = str(member.options.get("task_id") or uuid.uuid5(
        _ADDED, f"{request.id}:{request.retries}:{calls}"))
    added = store.chord_add(chord_id, task_id, expires_of(app))
    member.set(task_id=task_id, root_id=request.root_id, headers={
        **(member.options.get("headers") or {}),
        CHORD_HEADER: {**description, "index": size + added.index(task_id), "added": True}})
    if lazy:
        return member
    return member.apply_async(on_duplicate="ignore")


#: The namespace of the ids add_to_chord() gives the members it adds.
_ADDED = uuid.UUID("6d1c2a52-3f0e-4d8c-9a7e-2b9f1c0d7e11")


def body_of(message: Message) -> Any:
    """The body's signature (a dict) that a chord header member's message carries, Celery's
    ``request.chord``; ``None`` for a message that is no chord member."""
    description = message.headers.get(CHORD_HEADER)
    return description.get("body") if isinstance(description, dict) else None


def _fields(description: Any, where: str) -> tuple[str, int, int, list[str], Any]:
    """The chord description's fields, checked (a malformed one is the sender's bug)."""
    try:
        chord_id, index, size = description["id"], description["index"], description["size"]
        task_ids, body = description["task_ids"], description["body"]
        ok = (isinstance(chord_id, str) and isinstance(index, int) and isinstance(size, int)
              and isinstance(task_ids, list) and len(task_ids) == size and index >= 0
              and (index < size or description.get("added") is True)
              and isinstance(body, Mapping))
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise MessageDecodeError(
            f"{where}: header {CHORD_HEADER!r} is not a chord "
            "description (id, index, size, task_ids, body); it was not sent by chord()")
    return chord_id, index, size, [str(t) for t in task_ids], body


def _failure(task_ids: Sequence[str], metas: Sequence[Meta | None]) -> ChordError | None:
    """The :class:`ChordError` of the first member that did not succeed, in header order."""
    for task_id, meta in zip(task_ids, metas, strict=True):
        if meta is None:
            return ChordError(
                f"Dependency {task_id} has no stored result (it expired, or its task has "
                "ignore_result=True: a chord's header tasks must store their results)")
        if meta.get("status") in states.PROPAGATE_STATES:
            return ChordError(f"Dependency {task_id} raised {_describe_error(meta)}")
    return None


def _describe_error(meta: Meta) -> str:
    error = meta.get("result")
    if isinstance(error, Mapping) and "exc_type" in error:
        message = error.get("exc_message")
        arguments = message if isinstance(message, list | tuple) else [message]
        return f"{error['exc_type']}({', '.join(repr(a) for a in arguments)})"
    return repr(error)


def _fail(app: Celery, store: ResultStore, body: Signature, error: ChordError,
          expires: float | None) -> None:
    """Fail the chord: its (body's) result is FAILURE with ``error``; the body's errbacks
    are called as a failed task's are (new-style ones with a request, here)."""
    from ..canvas import maybe_signature
    from ..context import Context
    from ..worker.run import _takes_request

    body_id = str(body.options["task_id"])
    logger.warning("chord %s failed: %s", body_id, error)
    from .codec import encode_exception
    from .layer import make_meta

    store.set_meta(body_id, make_meta(app, body_id, states.FAILURE, encode_exception(error)),
                   expires)
    errbacks = body.options.get("link_error") or []
    request = Context(id=body_id, task=body.task, args=body.args, kwargs=body.kwargs,
                      errbacks=errbacks, delivery_info={})
    for errback in errbacks:
        sig = maybe_signature(errback, app=app)
        target = app.tasks.get(sig.task)
        if target is not None and _takes_request(target):
            sig(request, error, None)
        else:
            sig.apply_async((body_id,), parent_id=body_id)
