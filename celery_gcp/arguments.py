"""How a task's arguments travel: bound by name, validated by pydantic, sent as one JSON object.

The call site and the worker use one schema per task, so a call the worker would reject fails
before anything is sent. :meth:`Arguments.encode` binds ``(args, kwargs)`` to the signature,
validates them, dumps the JSON body, and checks that body with exactly the rule the worker
applies (FastAPI parses the JSON, then validates it against :attr:`Arguments.schema`).

Parameters that are FastAPI dependencies (``Depends(...)``, ``Request``, ...) are not part of the
message: the worker resolves them per request. Un-annotated parameters carry plain JSON only
(dict, list, str, int, float, bool, None; a tuple arrives as a list, as with Celery's JSON
serializer); anything else must be annotated so that it round-trips exactly.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, NotRequired, Required

from fastapi import params
from fastapi.security import SecurityScopes
from pydantic import TypeAdapter, ValidationError
from pydantic_core import CoreConfig, PydanticSerializationError, SchemaSerializer, to_json
from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection
from starlette.responses import Response
from typing_extensions import TypedDict

from .exceptions import ImproperlyConfigured, TaskArgumentError

__all__ = ["Arguments"]

_INJECTED_TYPES = (HTTPConnection, Response, BackgroundTasks, SecurityScopes)
# Exact types: an IntEnum or str subclass would arrive as a plain int or str.
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
_SERIALIZE = CoreConfig(ser_json_inf_nan="constants")
_P = inspect.Parameter
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
_make_typed_dict: Any = TypedDict  # called with a computed name, which type checkers reject


class Arguments:
    """The argument schema of one task function.

    Example::

        spec = Arguments(add.run, "proj.add")
        body = spec.encode((2,), {"y": 3})      # b'{"x":2,"y":3}'
        args, kwargs = spec.call_args(spec.decode(body))
    """

    def __init__(self, fn: Callable[..., Any], task_name: str, *, typed: bool = True) -> None:
        self.task_name = task_name
        signature = inspect.signature(fn)
        hints = _type_hints(fn, task_name) if typed else {}
        message_params: list[inspect.Parameter] = []
        self.dependencies: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            annotation = hints.get(param.name, _P.empty)
            if _is_dependency(param, annotation):
                self.dependencies.append(param.replace(annotation=annotation))
            else:
                message_params.append(param)
        self.signature = signature.replace(parameters=message_params)
        self._layout = [(p.name, p.kind) for p in message_params]
        # Positions in the full signature: a dependency before a parameter shifts it, so a
        # value after one goes by name (see call_args).
        full = list(signature.parameters)
        self._position = {n: full.index(n) for n, k in self._layout if k in _POSITIONAL}
        self._positional = list(self._position)
        self._has_varargs = any(k is _P.VAR_POSITIONAL for _, k in self._layout)
        self._by_name = frozenset(
            p.name for p in message_params
            if p.kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)
        )
        self._required = frozenset(
            p.name for p in message_params
            if p.default is _P.empty and p.kind not in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD)
        )
        # Un-annotated and Any-annotated values carry plain JSON only: anything else would be
        # turned into a different type on the way (a date into a str, a tuple into a list).
        self._untyped = frozenset(
            p.name for p in message_params if hints.get(p.name, Any) in (Any, object)
        )
        # When every value is a JSON scalar (or a list / str-keyed dict of them), the validated
        # values read back from their JSON unchanged: the round-trip check can be skipped.
        self._round_trip = not all(_survives_json(hints.get(p.name, Any)) for p in message_params)
        fields: dict[str, Any] = {}
        for p in message_params:
            tp = hints.get(p.name, Any)
            if p.kind is _P.VAR_POSITIONAL:
                fields[p.name] = NotRequired[list[tp]]  # type: ignore[valid-type]
            elif p.kind is _P.VAR_KEYWORD:
                fields[p.name] = NotRequired[dict[str, tp]]  # type: ignore[valid-type]
            elif p.default is _P.empty:
                fields[p.name] = Required[tp]
            else:
                fields[p.name] = NotRequired[tp]
        title = "".join(part.title() for part in task_name.replace(":", ".").split(".")) + "Args"
        schema: Any = _make_typed_dict(title, fields)
        #: The TypedDict the worker's endpoint declares as its JSON body.
        self.schema: type[Any] = schema
        try:
            self._adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(schema)
            # Our own serializer: pydantic ignores a TypedDict's serialization config, and
            # floats must keep inf/nan (Python's json, which FastAPI uses, reads them back).
            self._serializer = SchemaSerializer(self._adapter.core_schema, _SERIALIZE)
        except Exception as exc:
            raise ImproperlyConfigured(
                f"task {task_name!r}: pydantic cannot validate its parameters ({exc}). "
                "Annotate them with types pydantic knows (models, dataclasses, datetime, ...), "
                "or pass typing=False to the task decorator to skip validation."
            ) from exc

    def encode(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> bytes:
        """Bind, validate and dump the arguments; raises :class:`TaskArgumentError`."""
        bound = self._bind(args, kwargs)
        for name in self._untyped.intersection(bound):
            _check_plain_json(self.task_name, name, bound[name])
        try:
            values = self._adapter.validate_python(bound)
            body = self._serializer.to_json(values)
        except ValidationError as exc:
            raise self._error(exc) from None
        except PydanticSerializationError as exc:
            raise TaskArgumentError(
                f"{self.task_name}(): {_culprit(bound)} cannot be sent as JSON: {exc}. (bytes "
                "must hold UTF-8 text: send binary data as base64 text.)"
            ) from None
        if self._round_trip:
            try:
                # The worker's rule, applied to the very bytes it will receive.
                self.decode(body)
            except ValidationError as exc:
                raise self._error(exc, after_round_trip=True) from None
        return body

    def _bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        # The common shapes without inspect's general (and slower) binding.
        if len(args) <= len(self._positional) and not self._has_varargs:
            bound = dict(zip(self._positional, args, strict=False))
            # A keyword for **kwargs, or one clashing with a positional value, takes
            # inspect's binding (which fills **kwargs, or raises): never an empty binding.
            if not kwargs or not (kwargs.keys() - self._by_name or kwargs.keys() & bound.keys()):
                bound.update(kwargs)
                if bound.keys() >= self._required:
                    return bound
        try:
            return dict(self.signature.bind(*args, **kwargs).arguments)
        except TypeError as exc:
            raise TaskArgumentError(f"{self.task_name}(): {exc}") from None

    def decode(self, body: bytes) -> dict[str, Any]:
        """Validate a JSON body as the worker does; raises :class:`pydantic.ValidationError`."""
        return self._adapter.validate_python(json.loads(body), from_attributes=True)

    def call_args(self, values: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Split validated values into the ``(args, kwargs)`` to call the function with."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        position = self._position
        for name, kind in self._layout:
            if name not in values:
                continue
            value = values[name]
            if kind is _P.VAR_POSITIONAL:
                args.extend(value)
            elif kind is _P.VAR_KEYWORD:
                kwargs.update(value)
            elif kind is _P.KEYWORD_ONLY or len(args) < position[name]:
                # An earlier optional parameter was left to its default: go by name from here.
                kwargs[name] = value
            else:
                args.append(value)
        return tuple(args), kwargs

    def merge(self, args: Sequence[Any], kwargs: Mapping[str, Any],
              new_args: Sequence[Any] | None, new_kwargs: Mapping[str, Any] | None,
              ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Replace the args or kwargs of a call, as ``self.retry(args=, kwargs=)`` does.

        Given only new kwargs, positional values they name are dropped rather than clashing.
        """
        if new_args is None and new_kwargs is None:
            return tuple(args), dict(kwargs)
        if new_kwargs is None:
            return tuple(new_args or ()), dict(kwargs)
        if new_args is not None:
            return tuple(new_args), dict(new_kwargs)
        names = [n for n, k in self._layout if k in _POSITIONAL]
        clash = [i for i, n in enumerate(names[: len(args)]) if n in new_kwargs]
        if not clash:
            return tuple(args), dict(new_kwargs)
        keep = tuple(args[: clash[0]])
        named = dict(zip(names[clash[0] :], args[clash[0] :], strict=False))
        return keep, {**named, **new_kwargs}

    def _error(self, exc: ValidationError, after_round_trip: bool = False) -> TaskArgumentError:
        problems = []
        for err in exc.errors(include_url=False):
            loc = err["loc"]
            where = f"argument {loc[0]!r}" if loc else "arguments"
            if len(loc) > 1:
                where += " at " + ".".join(str(part) for part in loc[1:])
            problems.append(f"{where}: {err['msg']} (got {_short(err.get('input'))})")
        note = " after the JSON round trip the worker does" if after_round_trip else ""
        return TaskArgumentError(f"{self.task_name}(){note}: " + "; ".join(problems))


def _type_hints(fn: Callable[..., Any], task_name: str) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ImproperlyConfigured(
            f"task {task_name!r}: cannot resolve its type annotations ({exc!r}). Import the "
            "annotated types at module level (not only under TYPE_CHECKING), or pass "
            "typing=False to the task decorator to skip argument validation."
        ) from exc
    hints.pop("return", None)
    return hints


def _survives_json(tp: Any) -> bool:
    """Whether values validated as ``tp`` validate the same after a JSON round trip."""
    if tp in _JSON_SCALARS or tp in (Any, object, None):
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return all(_survives_json(arg) for arg in args)
    if origin is list and len(args) == 1:
        return _survives_json(args[0])
    if origin is dict and len(args) == 2:
        return args[0] is str and _survives_json(args[1])
    return False


def _is_dependency(param: inspect.Parameter, annotation: Any) -> bool:
    if isinstance(param.default, params.Depends):
        return True
    if typing.get_origin(annotation) is Annotated:
        if any(isinstance(m, params.Depends) for m in annotation.__metadata__):
            return True
        annotation = typing.get_args(annotation)[0]
    return isinstance(annotation, type) and issubclass(annotation, _INJECTED_TYPES)


def _check_plain_json(task_name: str, name: str, value: Any) -> None:
    bad = _first_non_json(value)
    if isinstance(bad, _NonStringKey):
        raise TaskArgumentError(
            f"{task_name}(): argument {name!r} holds a dict with the key {bad.key!r}, but JSON "
            "object keys are strings. Annotate the parameter (e.g. "
            f"`{name}: dict[{type(bad.key).__name__}, ...]`) so keys are converted back, or "
            "use string keys."
        )
    if bad is not None:
        raise TaskArgumentError(
            f"{task_name}(): argument {name!r} holds a {type(bad).__module__}."
            f"{type(bad).__qualname__}, which is not plain JSON, and the parameter has no "
            f"annotation. Annotate it (e.g. `{name}: {type(bad).__name__}`) so it round-trips "
            "exactly, or convert the value before calling."
        )


class _NonStringKey:
    def __init__(self, key: Any) -> None:
        self.key = key


def _first_non_json(value: Any) -> Any:
    if type(value) in _JSON_SCALARS:
        return None
    if isinstance(value, list | tuple):
        for item in value:
            bad = _first_non_json(item)
            if bad is not None:
                return bad
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return _NonStringKey(key)
            bad = _first_non_json(item)
            if bad is not None:
                return bad
        return None
    return value


def _culprit(bound: dict[str, Any]) -> str:
    for name, value in bound.items():
        try:
            to_json(value)
        except PydanticSerializationError:
            return f"argument {name!r}"
    return "an argument"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
