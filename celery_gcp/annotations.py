"""``task_annotations``: set task attributes from configuration, as Celery does.

The setting is a dict (task name, or ``"*"`` for every task, to a dict of attributes), an object
with an ``annotate(task)`` method returning such a dict (or ``None``), an importable name of
either, or a list of these; earlier entries are applied first.

Example::

    app.conf.task_annotations = {"tasks.add": {"rate_limit": "10/s"}, "*": {"max_retries": 5}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .exceptions import ImproperlyConfigured
from .utils.imports import import_object

if TYPE_CHECKING:
    from .task import Task

__all__ = ["annotate"]


def annotate(task: Task[Any, Any], setting: Any) -> None:
    """Apply every annotation in ``setting`` that matches ``task`` to its class."""
    if not setting:
        return
    entries = setting if isinstance(setting, list | tuple) else [setting]
    cls = type(task)
    for entry in entries:
        if isinstance(entry, str):
            entry = import_object(entry)
        if isinstance(entry, Mapping):
            found = [entry.get("*"), entry.get(task.name)]
        elif hasattr(entry, "annotate"):
            found = [entry.annotate(task)]
        else:
            raise ImproperlyConfigured(
                f"task_annotations entry {entry!r} is neither a dict nor has annotate(task)"
            )
        for attributes in found:
            for key, value in (attributes or {}).items():
                if key.startswith("@"):
                    raise ImproperlyConfigured(
                        f"task_annotations key {key!r}: method wrapping ('@name') is not "
                        "supported; subclass Task (task_cls=) to wrap methods instead"
                    )
                setattr(cls, key, value)
