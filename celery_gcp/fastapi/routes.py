"""What the route builders share: the route class base, option checks, URLs.

A builder returns a subclass of :class:`BuiltRoute` whose class attributes hold what the
builder was given; each route made from it puts its methods (``delay``, ``options``,
``scheduler``) on its endpoint function. A route that is included in another router (or the
app) is made again there with the full path: the endpoint's methods then send to that path,
so nested prefixes give the right URL.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from fastapi.routing import APIRoute
from starlette.applications import Starlette
from starlette.routing import Router

from .call import RouteCall

__all__ = ["BuiltRoute", "check_options", "one_base_url", "served_path"]


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
    """The path (format) ``route`` is served at, prefixes of the routers it is included in
    added.

    FastAPI includes a router lazily (the app keeps a reference to it and its include prefix;
    routes are not copied), and a route does not know where it was included. So the routers
    that hold the route, and the includes of those, are found by walking references upwards
    (:func:`gc.get_referrers`), once per route. Where the route is served at several paths,
    any of them runs it: the shortest one of an app is taken.
    """
    found: set[tuple[bool, str]] = set()
    _walk(route, route.path_format, found, 0)
    if not found:
        return route.path_format
    return min(found, key=lambda item: (not item[0], len(item[1]), item[1]))[1]


def _walk(item: object, path: str, found: set[tuple[bool, str]], depth: int) -> None:
    from fastapi import routing

    included = getattr(routing, "_IncludedRouter", None)  # FastAPI's lazy includes
    for router in _holders(item):
        parents = [ref for ref in gc.get_referrers(router) if included is not None
                   and isinstance(ref, included) and ref.original_router is router]
        if not parents or depth > 20:
            found.add((_is_app_router(router), path))
        for parent in parents:
            _walk(parent, parent.include_context.prefix + path, found, depth + 1)


def _holders(item: object) -> list[Router]:
    """The routers whose route list holds ``item``."""
    out: list[Router] = []
    for ref in gc.get_referrers(item):
        if isinstance(ref, list) and any(x is item for x in ref):
            for owner in gc.get_referrers(ref):
                if isinstance(owner, dict):  # an instance's __dict__ (some Python versions)
                    owner = next((o for o in gc.get_referrers(owner)
                                  if getattr(o, "__dict__", None) is owner), None)
                if isinstance(owner, Router) and owner.routes is ref:
                    out.append(owner)
    return out


def _is_app_router(router: Router) -> bool:
    return any(isinstance(ref, Starlette) and ref.router is router
               for ref in gc.get_referrers(router))


def one_base_url(base_url: str | None, callback_base_url: str | None) -> str:
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


def check_options(kind: str, options: Mapping[str, Any], known: frozenset[str]) -> None:
    """Raise ``TypeError`` naming options that ``kind`` does not take, and ``ValueError`` for
    a bad countdown or timeout."""
    unknown = sorted(options.keys() - known)
    if unknown:
        raise TypeError(f"Unknown option(s) for {kind}: {', '.join(unknown)}; it takes "
                        f"{', '.join(sorted(known))}")
    for key in ("countdown", "task_create_timeout", "job_create_timeout"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value)):
            raise ValueError(f"{key}={value!r}: give a number of seconds")
        if key != "countdown" and value is not None and value <= 0:
            raise ValueError(f"{key}={value!r}: give a positive number of seconds")
