"""Results and exceptions as stored: JSON, in the layout Celery's JSON serializer uses.

A return value is stored as its JSON form (pydantic's: datetimes, UUIDs, models and
dataclasses become JSON values). An exception is stored as Celery stores one in JSON::

    {"exc_type": "ValueError", "exc_module": "builtins", "exc_message": ["bad input"]}

and rebuilt on read by looking its class up **only among modules already imported**
(``sys.modules``): stored data never makes this process import anything. A class that is not
found (or is not an exception) becomes a generic exception class of the same name and module,
carrying the message, as Celery does for a type it cannot load.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from typing import Any

from .. import states

__all__ = ["decode_exception", "decode_result", "encode_exception", "encode_result",
           "is_encoded_exception", "outcome"]


def encode_result(value: Any) -> Any:
    """``value`` as JSON-able data (``TypeError`` naming the type if it has no JSON form)."""
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    try:
        return to_jsonable_python(value)
    except PydanticSerializationError as exc:
        raise TypeError(f"a task result of type {type(value).__qualname__} cannot be stored "
                        f"as JSON: {exc}") from None


def encode_exception(exc: BaseException) -> dict[str, Any]:
    """``exc`` as Celery's JSON serializer stores it (its arguments as JSON values, or their
    ``repr`` when they have none)."""
    from pydantic_core import to_jsonable_python

    cls = type(exc)
    return {"exc_type": cls.__qualname__, "exc_module": cls.__module__,
            "exc_message": to_jsonable_python(list(exc.args), fallback=repr)}


def is_encoded_exception(value: Any) -> bool:
    """Whether ``value`` is an exception in its stored form."""
    return isinstance(value, Mapping) and "exc_type" in value and "exc_message" in value


def decode_exception(data: Mapping[str, Any]) -> BaseException:
    """The exception ``data`` describes (see the module docstring for how its class is
    found)."""
    name = str(data.get("exc_type") or "Exception")
    module = str(data.get("exc_module") or "builtins")
    message = data.get("exc_message")
    args = tuple(message) if isinstance(message, list | tuple) else (message,)
    cls = _imported_class(module, name)
    if cls is not None:
        try:
            return cls(*args)
        except Exception:  # a constructor that wants other arguments: generic below
            pass
    return _generic_class(module, name)(*args)


def decode_result(meta: Mapping[str, Any]) -> Any:
    """The result of a stored meta: the exception of a failed (or retried, revoked) task,
    the stored value otherwise."""
    result = meta.get("result")
    if meta.get("status") in states.EXCEPTION_STATES and isinstance(result, Mapping) \
            and is_encoded_exception(result):
        return decode_exception(result)
    return result


def outcome(meta: Mapping[str, Any], propagate: bool = True) -> Any:
    """What ``get()`` gives for a ready meta: its result, or (``propagate``) its exception
    raised if the task failed or was revoked, as Celery's ``maybe_throw``."""
    value = decode_result(meta)
    if propagate and meta.get("status") in states.PROPAGATE_STATES:
        from ..exceptions import TaskRevokedError

        raise value if isinstance(value, BaseException) else TaskRevokedError(value)
    return value


def _imported_class(module: str, qualname: str) -> type[BaseException] | None:
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        if found is None or part.startswith("_"):
            return None
        found = getattr(found, part, None)
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    return None


@functools.lru_cache(maxsize=256)  # one class per name, so isinstance() agrees between reads
def _generic_class(module: str, qualname: str) -> type[Exception]:
    cls = type(qualname.rsplit(".", 1)[-1], (Exception,), {"__module__": module})
    cls.__qualname__ = qualname
    return cls
