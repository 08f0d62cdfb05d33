"""Where a Celery (or kombu) name lives in the installed celery_gcp, if it does.

Checked at run time with importlib against celery_gcp itself (the user's code is never
imported), so the tool rewrites exactly what this version provides and reports the rest.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from types import ModuleType

__all__ = ["ROOTS", "dotted_target", "module_target", "name_exists", "root_of"]

#: Top-level packages that are rewritten, and their home in celery_gcp.
ROOTS = {"celery": "celery_gcp", "kombu": "celery_gcp.kombu"}
#: Celery modules whose celery_gcp home has another path (only where the module is named
#: explicitly: ``from celery.app.task import Task``, a string in ``mock.patch``).
_MOVED = {"celery.app.task": "celery_gcp.task"}


def root_of(dotted: str) -> str | None:
    """The rewritten package ``dotted`` belongs to (``celery``, ``kombu``), or None."""
    root = dotted.split(".", 1)[0]
    return root if root in ROOTS else None


def _left_out(name: str) -> bool:
    """Whether celery_gcp's ``name`` (or a package above it) stands for a Celery feature left
    out on purpose (celery_gcp.absent): its stand-in only raises, so it is no home."""
    from ..absent import ABSENT

    parts = ("celery" + name.removeprefix("celery_gcp")).split(".")
    return any(".".join(parts[:cut]) in ABSENT for cut in range(2, len(parts) + 1))


@cache
def _module_exists(name: str) -> bool:
    if name.startswith("celery_gcp.") and _left_out(name):
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package that does not exist
        return False


def module_target(module: str, *, moved: bool = True) -> str | None:
    """celery_gcp's module for Celery's ``module`` (``celery.result`` ->
    ``celery_gcp.result``), or None when the installed celery_gcp has none. ``moved=False``
    keeps the path as written (``import celery.app.task`` binds ``celery.app.task`` itself)."""
    root = root_of(module)
    if root is None:
        return None
    target = _MOVED.get(module) if moved else None
    target = target or ROOTS[root] + module[len(root):]
    return target if _module_exists(target) else None


@cache
def name_exists(module: str, name: str) -> bool:
    """Whether celery_gcp module ``module`` has ``name`` (an attribute or a submodule)."""
    if _module_exists(f"{module}.{name}"):
        return True
    if _left_out(f"{module}.{name}"):
        return False
    try:
        return hasattr(importlib.import_module(module), name)
    except Exception:  # a module that cannot be imported here has nothing to offer
        return False


def dotted_target(dotted: str) -> str | None:
    """celery_gcp's name for a dotted Celery name, module and attributes
    (``celery.result.AsyncResult.get`` -> ``celery_gcp.result.AsyncResult.get``), or None.

    Attributes are checked while they are modules or classes; what lies below an instance
    (``current_app.conf``) is not looked at, so no app is made to answer.
    """
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # the longest module prefix celery_gcp has
        target = module_target(".".join(parts[:cut]))
        if target is None:
            continue
        try:
            obj: object = importlib.import_module(target)
        except Exception:
            return None
        for attr in parts[cut:]:
            if not isinstance(obj, type | ModuleType):
                break
            try:
                obj = getattr(obj, attr)
            except Exception:  # absent (AttributeError), or a left-out name's ImportError
                return None
        return ".".join([target, *parts[cut:]])
    return None
