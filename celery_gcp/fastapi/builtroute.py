"""What the route builders share: the route class base, option checks, URLs.

A builder returns a subclass of :class:`BuiltRoute` whose class attributes hold what the
builder was given; each route made from it puts its methods (``delay``, ``options``,
``scheduler``) on its endpoint function. The URL a call goes to is the base URL plus the path
the app serves the route at, include prefixes and mounts added (:func:`served_path`).
"""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from fastapi.routing import APIRoute
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from .routecall import RouteCall

__all__ = ["BuiltRoute", "check_options", "pick_base_url", "served_path", "unalias_base_url"]


class BuiltRoute(APIRoute):
    """An ``APIRoute`` that puts ``methods`` on its endpoint (set by the builders)."""

    endpoint_methods: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._call: RouteCall | None = None
        for name in self.endpoint_methods:
            try:
                setattr(self.endpoint, name, getattr(self, name))
            except AttributeError:
                raise TypeError(
                    f"route {path}: cannot add .{name}() to {self.endpoint!r}; use a plain "
                    "function (not a bound method) as the endpoint") from None

    @property
    def call(self) -> RouteCall:
        """The request builder of this route, made on first use (not at import), for the
        path the route is served at (:func:`served_path`)."""
        if self._call is None:
            self._call = RouteCall(self, served_path(self))
        return self._call


def served_path(route: APIRoute) -> str:
    """The path (format) ``route`` is served at: the prefixes of the routers it is included
    in, and of the mounts above them, added.

    FastAPI includes a router lazily (the parent keeps the router and its include prefix;
    routes are not copied), so a route does not know where it is served. The live apps are
    found once (:func:`gc.get_objects`) and their route trees walked, as FastAPI walks them to
    route a request; the result is kept until a route is not found in it. A route served by
    no app keeps its own path. Where a route is served at several paths, any of them runs it:
    the shortest is taken.
    """
    global _index
    with _index_lock:
        found = _index.get(id(route))
        if found is None or found[0] is not route:
            _index = _build_index()
            found = _index.get(id(route))
    if found is None or found[0] is not route:
        return route.path_format
    return min(found[1], key=lambda path: (len(path), path))


# id(route) -> (route, the paths it is served at): the route is kept so its id stays its own.
_index: dict[int, tuple[BaseRoute, list[str]]] = {}
_index_lock = threading.Lock()


def _build_index() -> dict[int, tuple[BaseRoute, list[str]]]:
    # Each app's tree is walked once; only apps mounted in no other one give paths (a mounted
    # app's routes are reached, with the mount path, through the app it is mounted in).
    walked: list[tuple[Starlette, list[tuple[BaseRoute, str]]]] = []
    mounted: set[int] = set()
    for app in (obj for obj in gc.get_objects() if isinstance(obj, Starlette)):
        found: list[tuple[BaseRoute, str]] = []
        _walk(app.router.routes, "", found, mounted, 0)
        walked.append((app, found))
    index: dict[int, tuple[BaseRoute, list[str]]] = {}
    for app, found in walked:
        if id(app) not in mounted and id(app.router) not in mounted:
            for route, path in found:
                index.setdefault(id(route), (route, []))[1].append(path)
    return index


def _walk(routes: list[BaseRoute], prefix: str, found: list[tuple[BaseRoute, str]],
          mounted: set[int], depth: int) -> None:
    from fastapi import routing

    included = getattr(routing, "_IncludedRouter", None)  # FastAPI's lazy includes
    if depth > 30:  # a cycle of mounts: nothing is served there
        return
    for item in routes:
        if included is not None and isinstance(item, included):
            _walk(item.original_router.routes, prefix + item.include_context.prefix, found,
                  mounted, depth + 1)
        elif isinstance(item, Mount):
            inner = item.app
            mounted.add(id(inner))
            inner_routes = getattr(getattr(inner, "router", inner), "routes", None)
            if inner_routes is not None:
                _walk(inner_routes, prefix + item.path, found, mounted, depth + 1)
        elif isinstance(item, APIRoute):
            found.append((item, prefix + item.path_format))


def pick_base_url(base_url: str | None, callback_base_url: str | None) -> str:
    """The base URL from exactly one of ``base_url`` / ``callback_base_url``."""
    if (base_url is None) == (callback_base_url is None):
        raise TypeError("give exactly one of base_url= and callback_base_url= (the same "
                        "setting under its old and new names)")
    url = base_url if base_url is not None else callback_base_url
    assert url is not None
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url {url!r} must be an http(s) URL, e.g. "
                         "https://worker-abc-uc.a.run.app")
    return url.rstrip("/")


def unalias_base_url(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``callback_base_url`` (the old name) given as ``base_url``; both at
    once raise ``TypeError``."""
    if "base_url" not in options and "callback_base_url" not in options:
        return options
    out = {k: v for k, v in options.items() if k != "callback_base_url"}
    out["base_url"] = pick_base_url(options.get("base_url"), options.get("callback_base_url"))
    return out


def check_options(kind: str, options: Mapping[str, Any], known: frozenset[str]) -> None:
    """Raise ``TypeError`` naming options that ``kind`` does not take, and ``ValueError`` for
    a bad countdown, expiry or timeout."""
    unknown = sorted(options.keys() - known)
    if unknown:
        raise TypeError(f"Unknown option(s) for {kind}: {', '.join(unknown)}; it takes "
                        f"{', '.join(sorted(known))}")
    expires = options.get("expires")
    if expires is not None and not isinstance(expires, datetime) and (
            isinstance(expires, bool) or not isinstance(expires, int | float)
            or not math.isfinite(expires)):
        raise ValueError(f"expires={expires!r}: give a number of seconds or a datetime")
    for key in ("countdown", "task_create_timeout", "job_create_timeout"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value)):
            raise ValueError(f"{key}={value!r}: give a number of seconds")
        if key != "countdown" and value is not None and value <= 0:
            raise ValueError(f"{key}={value!r}: give a positive number of seconds")
