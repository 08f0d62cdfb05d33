"""Importing by name: settings sources, routers, task classes, ``-A`` and task discovery."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["django_app_packages", "import_object", "import_related"]


def import_object(name: str) -> Any:
    """Import ``"module"``, ``"module:attr"`` or ``"module.attr"``.

    >>> import_object("os.path:join").__name__
    'join'
    """
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if attr or "." not in module_name or exc.name != module_name:
            raise
        module_name, attr = module_name.rsplit(".", 1)
        module = importlib.import_module(module_name)
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from None


def import_related(package: str, related_name: str) -> None:
    """Import ``{package}.{related_name}`` if it exists (Celery's task discovery)."""
    module = f"{package}.{related_name}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # A package without a tasks module is fine; a tasks module that fails to import is not.
        if exc.name not in (module, package):
            raise


def django_app_packages() -> list[str]:
    """The packages of Django's installed apps, once Django is set up (else none)."""
    try:
        from django.apps import apps
    except ImportError:
        return []
    # App configs give package names even where INSTALLED_APPS lists "pkg.apps.PkgConfig".
    return [config.name for config in apps.get_app_configs()] if apps.ready else []
