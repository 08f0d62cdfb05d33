"""Settings sources: what ``config_from_object`` reads, kept and read through, as Celery does.

Celery keeps the object given to ``config_from_object`` (a module, a class, an instance, a
dict, Django's ``settings``) and its ``app.conf`` reads through to it, so a test that sets
``settings.CELERY_TASK_ALWAYS_EAGER = True`` after the app loaded runs tasks eagerly.
:class:`Source` does the same: :meth:`Source.changed` tells whether the object's values moved
since they were last read, cheaply enough for the send path (it compares the object's own
attribute dicts with copies; an object whose attributes are computed is read again instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ._setting_names import OLD_TO_NEW
from .utils.imports import import_object

__all__ = ["Source", "read_source"]

# Attributes through which Django's settings hold their values: ``LazySettings._wrapped`` (Celery
# unwraps it too) and ``override_settings``'s ``UserSettingsHolder.default_settings``.
_DELEGATES = ("_wrapped", "default_settings")


def read_source(obj: Any, namespace: str | None = None) -> dict[str, Any]:
    """Read settings from a dict, object, module or ``"module"``/``"module:attr"`` name.

    With ``namespace="CELERY"`` only ``CELERY_``-prefixed names are read, prefix removed and
    lower-cased (Django's convention): ``CELERY_TASK_ALWAYS_EAGER`` -> ``task_always_eager``;
    as in Celery the old upper-case names (``CELERY_ALWAYS_EAGER``, ``BROKER_URL``) are read
    too, and a namespaced new name wins over its old name.
    """
    if isinstance(obj, str):
        obj = import_object(obj)
    prefix = namespace.rstrip("_") + "_" if namespace else ""
    if isinstance(obj, Mapping):
        items = {k: v for k, v in obj.items() if _wanted(k, prefix)}
    else:
        # Only the names a setting can have are read: a Django settings object raises for
        # some others (an empty SECRET_KEY), as Celery's read-through never asks for them.
        items = {k: getattr(obj, k) for k in dir(obj)
                 if not k.startswith("_") and _wanted(k, prefix)}
        items = {k: v for k, v in items.items() if not isinstance(v, ModuleType)}
    if prefix:
        old = {OLD_TO_NEW[k]: v for k, v in items.items() if k in OLD_TO_NEW}
        items = {k[len(prefix) :].lower(): v for k, v in items.items()
                 if k.startswith(prefix) and k not in OLD_TO_NEW}
        items = {**old, **items}
    return items


def _wanted(name: Any, prefix: str) -> bool:
    return not prefix or (isinstance(name, str)
                          and (name.startswith(prefix) or name in OLD_TO_NEW))


class Source:
    """One ``config_from_object`` source: the object (imported once, from a name) and the
    values last read from it."""

    def __init__(self, obj: Any, namespace: str | None) -> None:
        self.obj = obj
        self.namespace = namespace
        self.values: dict[str, Any] = {}
        self._target: Any = None
        self._seen: list[tuple[Any, dict[str, Any]]] | None = None  # (live dict, its copy)

    def read(self) -> dict[str, Any]:
        """Import the object if it was given by name, and read its values (``ImportError``
        when the name does not import)."""
        if self._target is None:
            self._target = import_object(self.obj) if isinstance(self.obj, str) else self.obj
        self.values = read_source(self._target, self.namespace)
        self._seen = _snapshot(self._target)
        return self.values

    def changed(self) -> bool:
        """Whether the object's values differ from :attr:`values` (read again if so)."""
        seen = self._seen
        if seen is not None:
            for live, copy in seen:
                if live != copy:
                    break
            else:
                return False
        before = self.values
        return self.read() != before


def _snapshot(obj: Any) -> list[tuple[Any, dict[str, Any]]] | None:
    """The dicts that hold ``obj``'s values, each with a copy; ``None`` when its values are
    computed (a custom ``__getattr__``, ``__dir__`` or mapping), so only reading tells."""
    dicts: list[Any] = []
    if not _holders(obj, dicts):
        return None
    return [(d, dict(d)) for d in dicts]


def _holders(obj: Any, out: list[Any]) -> bool:
    if type(obj) is dict:
        out.append(obj)
        return True
    if isinstance(obj, ModuleType):
        out.append(vars(obj))
        return True
    if isinstance(obj, type):
        out.extend(vars(c) for c in obj.__mro__ if c is not object)
        return True
    own = getattr(obj, "__dict__", None)
    if not isinstance(own, dict):
        return False
    out.append(own)
    delegates = [own[name] for name in _DELEGATES if name in own]
    cls: Any = type(obj)
    if not delegates and (cls.__getattribute__ is not object.__getattribute__
                          or hasattr(cls, "__getattr__") or cls.__dir__ is not object.__dir__):
        return False
    out.extend(vars(c) for c in cls.__mro__ if c is not object)
    return all(_holders(d, out) for d in delegates)
