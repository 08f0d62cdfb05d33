"""A result's parents: as Celery's ``get()`` checks them for a failure before its own, and in
Celery's tuple form (``as_tuple()``, read back by ``result_from_tuple``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import states
from .codec import outcome

if TYPE_CHECKING:
    from .asyncresult import AsyncResult
    from .store import Meta

__all__ = ["Lineage", "parent_handles", "reraise_parents"]


class Lineage:
    """Celery's serialised forms of a task's result and its parents."""

    id: str
    parent: Any

    def as_tuple(self) -> tuple[Any, Any]:
        """``((id, the parent's as_tuple() or None), None)``, as Celery's; store it (JSON
        keeps it as lists) and rebuild the result with ``result_from_tuple``."""
        parent = self.parent
        return (self.id, None if parent is None else parent.as_tuple()), None

    def as_list(self) -> list[str]:
        """This result's id, then its parents', as Celery's ``as_list()``."""
        ids: list[str] = []
        node: Any = self
        while node is not None and len(ids) < 10_000:  # a cycle set by hand must not hang
            ids.append(str(node.id))
            node = getattr(node, "parent", None)
        return ids


def parent_handles(result: AsyncResult[Any]) -> list[AsyncResult[Any]]:
    """The tasks of ``result``'s parents, root first, a group's (a chord's header) by
    member: the order in which Celery's ``get()`` checks them for a failure."""
    nodes: list[Any] = []
    node = result.parent
    while node is not None and len(nodes) < 10_000:  # a cycle set by hand must not hang
        nodes.append(node)
        node = getattr(node, "parent", None)
    handles: list[AsyncResult[Any]] = []
    pending = list(reversed(nodes))
    while pending:
        node = pending.pop(0)
        members = getattr(node, "results", None)
        if members is None:  # one task's AsyncResult
            handles.append(node)
        else:  # a GroupResult / ResultSet: its members, nested groups flattened
            pending[:0] = list(members)
    return handles


def reraise_parents(parents: list[AsyncResult[Any]], read: Mapping[str, Meta | None]) -> None:
    """Raise the first failure among ``parents`` (in order), from their ready record or the
    one just ``read``."""
    for parent in parents:
        meta = parent._seen(parent._cache if parent._cache is not None else read.get(parent.id))
        if meta is not None and meta.get("status") in states.PROPAGATE_STATES:
            outcome(meta)
