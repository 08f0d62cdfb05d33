"""Chords without an always-on process: the header task that completes the set sends the body.

Contract (the result layer calls it; the chord machinery fills it in):

* a chord header member's message carries :data:`CHORD_HEADER` in ``Message.headers``: a JSON
  object naming the chord (``id``, the member's ``index``, the header ``size``, the ``body``
  signature, the ordered member ``task_ids``);
* when such a member finishes (stored as SUCCESS or FAILURE), the result layer calls
  :func:`part_done` after its meta is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import Celery
    from ..message import Message
    from .store import ResultStore

__all__ = ["CHORD_HEADER", "part_done"]

#: The ``Message.headers`` key of a chord header member's chord description.
CHORD_HEADER = "celery_gcp_chord"


def part_done(app: Celery, store: ResultStore, message: Message, state: str,
              result: Any) -> None:
    """Count the member of ``message`` done; the one that completes the header sends the
    body (a failed member fails the chord: ``ChordError`` to the body's errbacks)."""
    raise NotImplementedError("chords are not implemented yet")
