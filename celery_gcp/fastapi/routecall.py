"""How a call of a FastAPI route's endpoint becomes the HTTP request that runs it.

:class:`RouteCall` reads the route's parameters as FastAPI sees them (path, query, header,
cookie and body parameters, the endpoint's own and those of its dependencies) and turns
``(args, kwargs)`` into a path with its query, headers and a body that the same route parses
back into exactly those values:

- every value is validated against its annotation first (a dict is accepted for a model);
- path values are percent-encoded; a ``/`` is refused except in a ``{name:path}`` parameter
  (ASGI servers decode the path before routing, so ``%2F`` would split the value);
- a list query parameter repeats its name (``tags=a&tags=b``); an unset optional one is left out;
- an Enum travels by value, a bool as ``true`` / ``false``;
- header names follow FastAPI's underscore-to-dash conversion; cookies go in one ``Cookie``;
- one body parameter is the body itself (unless ``Body(embed=True)``), several are one object
  keyed by their names.

Parameters that FastAPI resolves on the worker (``Depends(...)``, ``Request``, ...) are not sent.

Example::

    call = RouteCall(route)              # route: an APIRoute for GET /items/{item_id}
    call.request((), {"item_id": "a/b", "tags": ["x", "y"]})
    # ('/items/a%2Fb?tags=x&tags=y', {}, b'')
"""

from __future__ import annotations

import enum
import inspect
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_json
from starlette.convertors import PathConvertor

from ..exceptions import TaskArgumentError
from ..platform import PLATFORM_HEADERS, PLATFORM_PREFIXES
from .exceptions import BadMethodError, MissingParamError, WrongTypeError

__all__ = ["RouteCall"]

_P = inspect.Parameter
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
# Cloud Tasks' HTTP methods, in the order a route serving several prefers them.
_METHODS = ("POST", "PUT", "PATCH", "GET", "DELETE", "HEAD", "OPTIONS")
_COOKIE = SimpleCookie()
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*\Z")  # RFC 3986 unreserved: never escaped


@dataclass(frozen=True, slots=True)
class _Param:
    name: str  # what the caller passes it as
    kind: str  # path, query, header, cookie or body
    field: Any  # FastAPI's ModelField: validate() and serialize() as FastAPI does
    wire: str  # its name in the request
    model: bool  # a pydantic model that FastAPI spreads over several parameters


class RouteCall:
    """The request builder of one route (see the module docstring)."""

    def __init__(self, route: APIRoute, path_format: str | None = None) -> None:
        self.route = route
        self.name = route.name
        #: The path the route is served at (its own, unless given with include prefixes).
        self.path_format = path_format or route.path_format
        methods = route.methods or {"POST"}
        self.method = next((m for m in _METHODS if m in methods), "")
        if not self.method:
            raise BadMethodError(
                f"route {route.path} serves {sorted(methods)}; Cloud Tasks and Cloud Scheduler "
                f"call one of {', '.join(_METHODS)}")
        self.params: dict[str, _Param] = {}
        for kind, field in _fields(route.dependant):
            self.params.setdefault(field.name, _param(kind, field))
        self._required = [n for n, p in self.params.items()
                          if p.field.field_info.is_required()]
        bodies = [p for p in self.params.values() if p.kind == "body"]
        self.embed = len(bodies) > 1 or any(
            getattr(p.field.field_info, "embed", False) for p in bodies)
        self._forms = [p.name for p in bodies if isinstance(p.field.field_info, params.Form)]
        # Positional arguments bind to the endpoint's parameters in order.
        self._positions = [p.name for p in inspect.signature(route.endpoint).parameters.values()
                           if p.kind in _POSITIONAL]

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any],
             positions: Sequence[str] | None = None) -> dict[str, Any]:
        """The call's values by parameter name; raises :class:`TaskArgumentError` (a
        ``TypeError``) for an argument the route does not take or a missing one.

        Positional arguments bind to ``positions`` (default: the endpoint's parameters in
        order; ``app.TaskRoute`` gives the parameters it sends, skipping dependencies as a
        Celery task's signature does)."""
        positions = self._positions if positions is None else positions
        if len(args) > len(positions):
            raise TaskArgumentError(
                f"{self.name}() takes {len(positions)} positional arguments but "
                f"{len(args)} were given")
        values: dict[str, Any] = {}
        for name, value in zip(positions, args, strict=False):
            if name not in self.params:
                raise TaskArgumentError(
                    f"{self.name}(): positional argument {len(values) + 1} would be {name!r}, "
                    "which FastAPI resolves on the worker; pass the others by name")
            values[name] = value
        for name, value in kwargs.items():
            if name not in self.params:
                takes = ", ".join(self.params) or "no arguments"
                raise TaskArgumentError(
                    f"{self.name}() got an unexpected keyword argument {name!r}; the route "
                    f"takes: {takes} (dependencies are resolved on the worker)")
            if name in values:
                raise TaskArgumentError(f"{self.name}() got multiple values for argument "
                                        f"{name!r}")
            values[name] = value
        missing = [n for n in self._required if n not in values]
        if missing:
            raise MissingParamError(
                f"{self.name}() missing required argument(s): {', '.join(map(repr, missing))}")
        return values

    def request(self, args: Sequence[Any], kwargs: Mapping[str, Any],
                positions: Sequence[str] | None = None) -> tuple[str, dict[str, str], bytes]:
        """The path with its query, the headers and the body of the call ``(args, kwargs)``
        (``positions``: as for :meth:`bind`)."""
        if self._forms:
            raise TaskArgumentError(
                f"{self.name}(): form and file parameters ({', '.join(self._forms)}) cannot be "
                "sent as a task; take a JSON body, or a reference to stored data")
        values = self.bind(args, kwargs, positions)
        path = self.path_format
        query: list[tuple[str, str]] = []
        headers: dict[str, str] = {}
        cookies: list[str] = []
        body: dict[str, Any] = {}
        for name, value in values.items():
            param = self.params[name]
            data = self._validate(param, value)
            if param.kind == "body":
                body[param.wire] = data
                continue
            for wire, text in _texts(self.name, param, data):
                if param.kind == "path":
                    if not text:
                        raise TaskArgumentError(
                            f"{self.name}(): path parameter {name!r} is empty, so the URL "
                            "would not match the route")
                    convertor = self.route.param_convertors.get(wire)
                    safe = "/" if isinstance(convertor, PathConvertor) else ""
                    if not safe and "/" in text:
                        # The server decodes %2F before routing: the value would be split.
                        raise TaskArgumentError(
                            f"{self.name}(): path parameter {name!r} holds '/', which cannot "
                            "reach the route intact (servers decode the path before routing); "
                            f"declare it as {{{wire}:path}} or take it in the query")
                    path = path.replace("{" + wire + "}", _quote(text, safe))
                elif param.kind == "query":
                    query.append((wire, text))
                elif param.kind == "header":
                    if wire in headers:
                        raise TaskArgumentError(
                            f"{self.name}(): header {wire!r} holds several values; Cloud Tasks "
                            "sends one value per header")
                    headers[wire] = _header_value(self.name, wire, text)
                else:
                    cookies.append(f"{wire}={_COOKIE.value_encode(text)[1]}")
        if body and self.method not in ("POST", "PUT", "PATCH"):
            raise BadMethodError(
                f"{self.name}(): a {self.method} route cannot take a body as a task (Cloud "
                "Tasks and Cloud Scheduler send one with POST, PUT or PATCH only); take the "
                "values in the query, or serve the route with POST")
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        if query:
            path += "?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in query)
        return path, headers, self._body(body)

    def _validate(self, param: _Param, value: Any) -> Any:
        """``value`` validated by FastAPI's own field, as JSON-ready data."""
        valid, errors = param.field.validate(value, {}, loc=(param.kind, param.name))
        if errors:
            problems = "; ".join(f"{e.get('msg')} (input {repr(e.get('input'))[:80]})"
                                 for e in errors)
            raise WrongTypeError(f"{self.name}(): argument {param.name!r}: {problems}")
        if type(valid) in _JSON_SCALARS:  # already JSON-ready: nothing to convert
            return valid
        return param.field.serialize(valid, mode="json", by_alias=True)

    def _body(self, body: dict[str, Any]) -> bytes:
        if not body:
            return b""
        value = body if self.embed else next(iter(body.values()))
        return to_json(value)


def _fields(dependant: Dependant) -> Iterator[tuple[str, Any]]:
    """The route's request parameters, the endpoint's first, then its dependencies'."""
    for kind, fields in (("path", dependant.path_params), ("query", dependant.query_params),
                         ("header", dependant.header_params),
                         ("cookie", dependant.cookie_params), ("body", dependant.body_params)):
        for field in fields:
            yield kind, field
    for sub in dependant.dependencies:
        yield from _fields(sub)


def _param(kind: str, field: Any) -> _Param:
    info = field.field_info
    wire = field.validation_alias or field.alias
    if kind == "header" and getattr(info, "convert_underscores", True) and wire == field.name:
        wire = wire.replace("_", "-")
    annotation = info.annotation
    model = kind in ("query", "header", "cookie") and isinstance(annotation, type) and (
        issubclass(annotation, BaseModel))
    return _Param(field.name, kind, field, wire, model)


def _texts(route: str, param: _Param, data: Any) -> list[tuple[str, str]]:
    """The (name, text) pairs of a non-body parameter's JSON-ready value."""
    out: list[tuple[str, str]] = []
    if param.model:  # FastAPI reads each field of the model as its own parameter
        for key, value in (data or {}).items():
            wire = key.replace("_", "-") if param.kind == "header" else key
            _add_texts(out, route, param.name, wire, value)
    else:
        _add_texts(out, route, param.name, param.wire, data)
    return out


def _add_texts(out: list[tuple[str, str]], route: str, name: str, wire: str,
               value: Any) -> None:
    if isinstance(value, list | tuple):
        for item in value:
            _add_texts(out, route, name, wire, item)
    elif isinstance(value, str):
        out.append((wire, value))
    elif value is None or value is PydanticUndefined:  # unset: the route's default applies
        return
    elif isinstance(value, bool):
        out.append((wire, "true" if value else "false"))
    elif isinstance(value, dict):
        raise TaskArgumentError(
            f"{route}(): argument {name!r} is an object, which cannot travel in a URL or a "
            "header; take it in the body")
    elif isinstance(value, enum.Enum):
        out.append((wire, str(value.value)))
    else:
        out.append((wire, str(value)))


def _quote(text: str, safe: str = "") -> str:
    """Percent-encode ``text`` for a URL path segment or a query part (most values need
    nothing: those are returned as they are, which is much faster)."""
    if _UNRESERVED.match(text):
        return text
    return urllib.parse.quote(text, safe=safe)


def _header_value(route: str, wire: str, text: str) -> str:
    name = wire.lower()
    if name in PLATFORM_HEADERS or name.startswith(PLATFORM_PREFIXES):
        raise TaskArgumentError(
            f"{route}(): header {wire!r} is set by Cloud Tasks / Cloud Scheduler on delivery, "
            "so the value given would not arrive; send it in the query or the body")
    if not text.isascii() or any(c in text for c in "\r\n\0"):
        raise TaskArgumentError(
            f"{route}(): header {wire!r} must be printable ASCII, got {text[:50]!r}; send "
            "other text in the body or the query")
    return text
