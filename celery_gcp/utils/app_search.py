"""Finding the app that ``-A`` names, the way Celery's ``find_app`` does.

``-A proj:attr`` is that attribute. ``-A proj.attr`` is the module ``proj.attr`` if there is
one, else attribute ``attr`` of ``proj``. For a module, in order: its ``app``, then its
``celery`` (when that is an app, not the ``celery`` module), then the submodule
``proj.celery`` of a package (Celery's Django layout: ``-A proj`` finds ``proj/celery.py``'s
app), then any Celery app among the module's attributes. Unlike Celery, an ``app`` that is not
a Celery app (a FastAPI ``app`` next to the Celery one) is passed over, not returned.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["AppNotFound", "find_app"]


class AppNotFound(Exception):
    """What ``-A`` names is not a Celery app, or cannot be imported; the message says what was
    passed, what was looked at and what was found instead."""


def find_app(name: str) -> Celery:
    """The Celery app ``name`` (``module``, ``module:attr`` or ``module.attr``) names."""
    from ..app import Celery

    module_name, colon, attr = name.partition(":")
    if colon:
        module = _import(module_name, name)
        found = getattr(module, attr, _MISSING)
        if found is _MISSING:
            raise AppNotFound(f"module {module_name!r} has no attribute {attr!r} "
                              f"(from -A {name}); it has {_contents(module)}")
        if not _is_app(found, Celery):
            raise AppNotFound(f"-A {name} is {_kind(found)}, not a Celery app")
        return _unwrapped(found)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name or "." not in name:
            raise _import_error(name, name, exc) from None
        parent, attr = name.rsplit(".", 1)  # proj.app: attribute `app` of module `proj`
        module = _import(parent, name)
        found = getattr(module, attr, _MISSING)
        if found is _MISSING:
            raise AppNotFound(f"no module named {name!r}, and module {parent!r} has no "
                              f"attribute {attr!r}; it has {_contents(module)}") from None
        if isinstance(found, ModuleType):
            return _in_module(found, name, Celery)
        if not _is_app(found, Celery):
            raise AppNotFound(f"-A {name} is {_kind(found)}, not a Celery app") from None
        return _unwrapped(found)
    except Exception as exc:
        raise _import_error(name, name, exc) from None
    return _in_module(module, name, Celery)


_MISSING: Any = object()


def _in_module(module: ModuleType, name: str, celery: type[Celery]) -> Celery:
    for attr in ("app", "celery"):
        found = getattr(module, attr, None)
        if found is not None and _is_app(found, celery):
            return _unwrapped(found)
    looked = f"{name}.app, {name}.celery"
    if hasattr(module, "__path__"):  # a package: its celery submodule (Celery's Django layout)
        submodule = f"{module.__name__}.celery"
        looked += f", module {submodule}"
        try:
            inner = importlib.import_module(submodule)
        except ModuleNotFoundError as exc:
            if exc.name != submodule:
                raise _import_error(submodule, name, exc) from None
        except Exception as exc:
            raise _import_error(submodule, name, exc) from None
        else:
            try:
                return _in_module(inner, submodule, celery)
            except AppNotFound:
                pass
    values = list(vars(module).values())
    # Real instances first, by type(): a lazy proxy (Django's settings) is evaluated only when
    # no app is there, and one that fails to evaluate is passed over.
    for value in values:
        if issubclass(type(value), celery):
            return value  # type: ignore[no-any-return]
    for value in values:
        if _is_app(value, celery):
            return _unwrapped(value)
    raise AppNotFound(f"module {module.__name__!r} has no Celery app (from -A {name}; looked at "
                      f"{looked} and every attribute); it has {_contents(module)}; "
                      "pass -A module:attribute")


def _unwrapped(app: Any) -> Celery:
    """The app itself, not a proxy of it (``celery = current_app``): the commands hold it."""
    getter = getattr(app, "_get_current_object", None)
    return getter() if callable(getter) else app  # type: ignore[no-any-return]


def _is_app(value: object, celery: type[Celery]) -> bool:
    try:
        return isinstance(value, celery)
    except Exception:  # a lazy object that cannot be evaluated here is not the app
        return False


def _import(module_name: str, name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise _import_error(module_name, name, exc) from None


def _import_error(module_name: str, name: str, exc: BaseException) -> AppNotFound:
    if isinstance(exc, ModuleNotFoundError) and exc.name is not None and (
            module_name == exc.name or module_name.startswith(f"{exc.name}.")):
        return AppNotFound(f"no module named {exc.name!r} (from -A {name}): run the command "
                           "from your project's directory, or check the name")
    summary = " ".join(str(exc).split()) or "(no message)"
    return AppNotFound(f"importing module {module_name!r} (from -A {name}) failed: "
                       f"{type(exc).__name__}: {summary}")


def _kind(value: object) -> str:
    if isinstance(value, ModuleType):
        return f"the module {value.__name__}"
    return f"a {type(value).__name__}"


def _contents(module: ModuleType) -> str:
    """What the module holds, briefly: ``app`` and ``celery`` by kind, then public names."""
    named = [f"{attr} ({_kind(getattr(module, attr))})"
             for attr in ("app", "celery") if hasattr(module, attr)]
    others = sorted(k for k in vars(module) if not k.startswith("_") and k not in
                    ("app", "celery", "annotations"))
    shown = others[:8] + ([f"{len(others) - 8} more"] if len(others) > 8 else [])
    if shown:
        named.append("attributes " + ", ".join(shown))
    return "; ".join(named) or "no attributes"
