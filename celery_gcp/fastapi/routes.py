"""What the route builders share: the route class base, option checks, URLs.

A builder returns a subclass of :class:`BuiltRoute` whose class attributes hold what the
builder was given; each route made from it puts its methods (``delay``, ``options``,
``scheduler``) on its endpoint function. A route that is included in another router (or the
app) is made again there with the full path: the endpoint's methods then send to that path,
so nested prefixes give the right URL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from fastapi.routing import APIRoute

from .call import RouteCall

__all__ = ["BuiltRoute", "check_options", "one_base_url"]


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
        """The request builder of this route, made on first use (not at import)."""
        if self._call is None:
            self._call = RouteCall(self)
        return self._call


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
