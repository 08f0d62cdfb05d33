"""Small functional helpers, named as in :mod:`celery.utils.functional`."""

from __future__ import annotations

from typing import Any

__all__ = ["maybe_list"]


def maybe_list(value: Any) -> list[Any]:
    """``value`` as a list: ``None`` is empty, a list or tuple is copied, anything else is one item.

    Example::

        maybe_list(None) == []
        maybe_list(add.s()) == [add.s()]
    """
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]
