"""Signatures and workflows, mirroring :mod:`celery.canvas`.

A :class:`Signature` is a dict of JSON, so it travels in ``X-Celery-Link`` headers; a
``chain`` or ``group`` carries its members in its dict (``kwargs["tasks"]``), as in Celery,
and :func:`signature` / :meth:`Signature.from_dict` rebuild any of them from that dict.

Example::

    add.s(2, 2).delay()
    chain(add.s(2, 2), mul.s(4)).apply_async()      # mul(4, 4) after add
    add.apply_async((1, 1), link=group(mul.s(2), mul.s(3)))   # both get 2
    add.s(1, 1).set(countdown=10).apply_async()
    chord([add.s(1, 1), add.s(2, 2)])(tsum.s())      # tsum([2, 4]), with a result store
"""

from __future__ import annotations

from ..result import GroupResult
from .chords import chord
from .mapping import chunks, xmap, xstarmap
from .signatures import Signature, maybe_signature, signature, subtask
from .workflows import chain, group

__all__ = ["GroupResult", "Signature", "chain", "chord", "chunks", "group", "maybe_signature",
           "signature", "subtask", "xmap", "xstarmap"]
