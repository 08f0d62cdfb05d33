"""What the route builders share: the route class base, option checks, URLs.

A builder returns a subclass of :class:`BuiltRoute` whose class attributes hold what the
builder was given; each route made from it puts its methods (``delay``, ``options``,
``scheduler``) on its endpoint function, and an endpoint can be the task of one route only.

The URL a call goes to is the base URL, then what the app serves the route under that the
base URL does not already name, then the route's own path (:func:`callback_url`).
"""

from __future__ import annotations

import gc
import math
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from fastapi.routing import APIRoute
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from .routecall import RouteCall

__all__ = ["BuiltRoute", "callback_url", "check_options", "claimed_by", "pick_base_url",
           "refuse_second_route", "served_prefixes", "unalias_base_url"]


class BuiltRoute(APIRoute):
    """An ``APIRoute`` that puts ``endpoint_methods`` on its endpoint (set by the builders)."""

    endpoint_methods: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._call: RouteCall | None = None
        self._places: list[tuple[str, ...]] | None = None
        #: The route this one serves for: itself, or the route an older FastAPI's
        #: ``include_router`` copied (the copy's path has the include prefixes in front,
        #: ``copy_prefixes``, outermost first).
        self.origin: BuiltRoute = self
        self.copy_prefixes: tuple[str, ...] = ()
        self._copies: list[BuiltRoute] = []
        if self.endpoint_methods:
            self._bind()

    def _bind(self) -> None:
        endpoint = self.endpoint
        owner = claimed_by(endpoint, self.endpoint_methods[0])
        if owner is not None:
            if isinstance(owner, BuiltRoute) and _is_include_copy(self, owner):
                self._copied_from(owner.origin)  # .delay() stays the original route's
                return
            refuse_second_route(self.path, endpoint, self.endpoint_methods[0], owner)
        for name in self.endpoint_methods:
            try:
                setattr(endpoint, name, getattr(self, name))
            except AttributeError:
                raise TypeError(
                    f"route {self.path}: cannot add .{name}() to {endpoint!r}; use a plain "
                    "function (not a bound method) as the endpoint") from None

    def _copied_from(self, origin: BuiltRoute) -> None:
        # The route copied is the longest whose path ends this one's: a nested include
        # copies the copy its router holds, one include prefix at a time.
        source = max((r for r in (origin, *origin._copies)
                      if self.path_format.endswith(r.path_format)),
                     key=lambda r: len(r.path_format))
        self.origin = origin
        added = self.path_format[:len(self.path_format) - len(source.path_format)]
        self.copy_prefixes = _add((), added) + source.copy_prefixes
        origin._copies.append(self)

    @property
    def call(self) -> RouteCall:
        """The request builder of this route (its own path), made on first use."""
        if self._call is None:
            self._call = RouteCall(self)
        return self._call

    @property
    def places(self) -> list[tuple[str, ...]]:
        """Where the app serves this route (:func:`served_prefixes`), found on first use (not
        at import: routers are included after their routes are made)."""
        if self._places is None:
            self._places = served_prefixes(self)
        return self._places


def claimed_by(endpoint: Callable[..., Any], method: str) -> Any:
    """The route (or other object) whose ``method`` the endpoint already has, else ``None``."""
    existing = getattr(endpoint, method, None)
    if existing is None:
        return None
    owner = getattr(existing, "__self__", existing)
    return getattr(owner, "route", owner)  # an app.TaskRoute's methods are its task's


def refuse_second_route(path: str, endpoint: Callable[..., Any], method: str,
                        owner: Any) -> None:
    """Raise ``ValueError``: ``endpoint`` is the task of ``owner`` already."""
    where = f" (route {owner.path!r})" if isinstance(owner, APIRoute) else ""
    raise ValueError(
        f"route {path}: endpoint {getattr(endpoint, '__name__', endpoint)!r} already has "
        f".{method}(){where}; a function can be the task of one route only, as its "
        f".{method}() sends to one route: register a separate function per route, each "
        "calling the shared code")


def _is_include_copy(route: BuiltRoute, existing: BuiltRoute) -> bool:
    # FastAPI before lazy includes re-makes each route of an included router: same class,
    # endpoint and name, its path the include prefix plus the original one.
    return (type(route) is type(existing) and route.name == existing.name
            and route.methods == existing.methods
            and route.path_format.endswith(existing.origin.path_format))


def callback_url(base_url: str, places: Sequence[tuple[str, ...]], path: str) -> str:
    """The URL of ``path`` (the route's own path) at ``base_url``, for a route served under
    each of ``places``: the prefixes above its router (mount paths and include prefixes,
    outermost first).

    ``base_url`` is where the app is reached from outside, or any level below it: a mounted
    app, an included router. The deepest level whose prefixes the base URL's path ends with
    is taken, and the prefixes below that level are added: a base URL that names them all,
    as fastapi-gcp-tasks asks, is used as it is. For a route served under ``("/_fct",
    "/v1")``, ``http://h``, ``http://h/_fct`` and ``http://h/_fct/v1`` all give
    ``http://h/_fct/v1`` + ``path``. Of several places, the one the base URL names most
    deeply is taken, then the shortest.
    """
    base_path = urllib.parse.urlsplit(base_url).path.rstrip("/")

    def named(pieces: tuple[str, ...]) -> int:
        return next((k for k in range(len(pieces), 0, -1)
                     if base_path.endswith("".join(pieces[:k]))), 0)

    pieces = min(places or [()], key=lambda p: (-named(p), len("".join(p)), p))
    return base_url + "".join(pieces[named(pieces):]) + path


def served_prefixes(route: APIRoute) -> list[tuple[str, ...]]:
    """The places the live apps serve ``route`` at, shortest first: for each, the paths of
    the mounts and the prefixes of the includes above its router, outermost first (its
    router's own ``prefix`` is part of the route's path). ``[()]`` for a route that no app
    serves (its own path is all there is).

    FastAPI includes a router lazily (the parent keeps the router and its include prefix;
    routes are not copied), so a route does not know where it is served. The live apps are
    found once (:func:`gc.get_objects`) and their route trees walked, as FastAPI walks them to
    route a request; the result is kept until a route is not found in it.
    """
    global _index
    with _index_lock:
        found = _index.get(id(route))
        if found is None or found[0] is not route:
            _index = _build_index()
            found = _index.get(id(route))
    if found is None or found[0] is not route:
        return [()]
    return sorted(set(found[1]), key=lambda pieces: (len("".join(pieces)), pieces))


# id(route) -> (route, the prefixes of each place it is served): the route is kept so its id
# stays its own.
_index: dict[int, tuple[BaseRoute, list[tuple[str, ...]]]] = {}
_index_lock = threading.Lock()


def _build_index() -> dict[int, tuple[BaseRoute, list[tuple[str, ...]]]]:
    # Each app's tree is walked once; only apps mounted in no other one give paths (a mounted
    # app's routes are reached, with the mount path, through the app it is mounted in).
    walked: list[tuple[Starlette, list[tuple[BaseRoute, tuple[str, ...]]]]] = []
    mounted: set[int] = set()
    # type(), not isinstance(): isinstance reads __class__, which a lazy proxy (Celery's
    # PromiseProxy, Django's SimpleLazyObject) answers by evaluating what it wraps.
    for app in (obj for obj in gc.get_objects() if issubclass(type(obj), Starlette)):
        found: list[tuple[BaseRoute, tuple[str, ...]]] = []
        _walk(app.router.routes, (), found, mounted, 0)
        walked.append((app, found))
    index: dict[int, tuple[BaseRoute, list[tuple[str, ...]]]] = {}
    for app, found in walked:
        if id(app) not in mounted and id(app.router) not in mounted:
            for route, pieces in found:
                index.setdefault(id(route), (route, []))[1].append(pieces)
    return index


def _walk(routes: list[BaseRoute], prefixes: tuple[str, ...],
          found: list[tuple[BaseRoute, tuple[str, ...]]], mounted: set[int], depth: int) -> None:
    from fastapi import routing

    included = getattr(routing, "_IncludedRouter", None)  # FastAPI's lazy includes
    if depth > 30:  # a cycle of mounts: nothing is served there
        return
    for item in routes:
        if included is not None and isinstance(item, included):
            _walk(item.original_router.routes, _add(prefixes, item.include_context.prefix),
                  found, mounted, depth + 1)
        elif isinstance(item, Mount):
            inner = item.app
            mounted.add(id(inner))
            inner_routes = getattr(getattr(inner, "router", inner), "routes", None)
            if inner_routes is not None:
                _walk(inner_routes, _add(prefixes, item.path), found, mounted, depth + 1)
        elif isinstance(item, BuiltRoute) and item.origin is not item:  # an include's copy
            found.append((item.origin, prefixes + item.copy_prefixes))
        elif isinstance(item, APIRoute):
            found.append((item, prefixes))


def _add(prefixes: tuple[str, ...], prefix: str) -> tuple[str, ...]:
    return (*prefixes, prefix) if prefix else prefixes


def pick_base_url(base_url: str | None, callback_base_url: str | None) -> str:
    """The base URL from exactly one of ``base_url`` / ``callback_base_url``."""
    if (base_url is None) == (callback_base_url is None):
        raise TypeError("give exactly one of base_url= and callback_base_url= (the same "
                        "setting under its old and new names)")
    url = base_url if base_url is not None else callback_base_url
    assert url is not None
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url {url!r} must be an http(s) URL, e.g. "
                         "https://worker-abc-uc.a.run.app")
    if parts.query or parts.fragment:  # the route's path goes after it: it would be lost
        raise ValueError(f"base_url {url!r} has a query or fragment; give the URL the routes "
                         "are served under, without one")
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
