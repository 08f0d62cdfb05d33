"""The one wire format: a task's arguments as a JSON body, its metadata as ``X-Celery-*`` headers.

Every transport sends a :class:`Message` and the worker decodes one from the incoming request,
so the metadata codec lives here and nowhere else. The body is produced once, at the call site,
by :mod:`celery_gcp.arguments`; a Message carries it as bytes and never re-encodes it.

Headers (all values ASCII)::

    X-Celery-Version      wire-format version (1)
    X-Celery-Task-Id      the Celery task id
    X-Celery-Retries      how many times the task was retried by Celery (self.retry / autoretry)
    X-Celery-Queue        the Celery queue it was routed to (before queue-id mapping)
    X-Celery-ETA          ISO 8601, when it was asked to run
    X-Celery-Expires      ISO 8601, after which the worker skips it
    X-Celery-Root-Id      id of the first task of the workflow
    X-Celery-Parent-Id    id of the task that sent this one
    X-Celery-Link         JSON list of signatures to call with the result
    X-Celery-Link-Error   JSON list of signatures to call on failure
    X-Celery-Headers      JSON object of the caller's custom headers

A message for a FastAPI route (``celery_gcp.fastapi``, ``app.TaskRoute``) also has an
:class:`HttpTarget`: the route's method and path (with its query, already encoded) and the
headers its header and cookie parameters travel in. Its body is the route's request body as
FastAPI reads it (empty for a route without one).

A message on its way to Cloud Tasks carries its whole :class:`Destination`, resolved once at
the call site (queue path, URL, method, dispatch deadline, OIDC identity and audience), so a
transport only does I/O: it reads nothing of an app.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .exceptions import MessageDecodeError, TaskArgumentError

__all__ = ["CONTENT_TYPE", "GROUP", "GROUP_INDEX", "HEADER_PREFIX", "IGNORE_RESULT",
           "REPLACED_NESTING", "VERSION", "Destination", "HttpTarget", "Message", "checked_id",
           "new_id"]

VERSION = 1
CONTENT_TYPE = "application/json"
#: The ``Message.headers`` key counting how often a task id was handed to a replacement
#: (``self.replace()``): the replacement's Cloud Tasks name differs from the replaced task's.
REPLACED_NESTING = "replaced_task_nesting"
#: The ``Message.headers`` key of a per-call ``apply_async(ignore_result=)``: it overrides the
#: task's ``ignore_result`` for that run and its retries, as in Celery.
IGNORE_RESULT = "ignore_result"
#: The ``Message.headers`` keys of a group member's group id and its index in the group (a
#: chord header's too), read back as ``self.request.group`` / ``group_index``, as in Celery.
GROUP, GROUP_INDEX = "group", "group_index"
HEADER_PREFIX = "x-celery-"
_DIGITS = re.compile(r"^[0-9]{1,9}\Z")

_H_VERSION = "X-Celery-Version"
_H_ID = "X-Celery-Task-Id"
_H_RETRIES = "X-Celery-Retries"
_H_QUEUE = "X-Celery-Queue"
_H_ETA = "X-Celery-ETA"
_H_EXPIRES = "X-Celery-Expires"
_H_ROOT = "X-Celery-Root-Id"
_H_PARENT = "X-Celery-Parent-Id"
_H_LINK = "X-Celery-Link"
_H_LINK_ERROR = "X-Celery-Link-Error"
_H_HEADERS = "X-Celery-Headers"

# The same names in lower case, as ASGI delivers header names.
_L_VERSION, _L_ID, _L_RETRIES, _L_QUEUE, _L_ETA, _L_EXPIRES, _L_ROOT, _L_PARENT, _L_LINK, \
    _L_LINK_ERROR, _L_HEADERS = (
        h.lower() for h in (_H_VERSION, _H_ID, _H_RETRIES, _H_QUEUE, _H_ETA, _H_EXPIRES,
                            _H_ROOT, _H_PARENT, _H_LINK, _H_LINK_ERROR, _H_HEADERS)
    )

Signature = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """The request a route's message is, instead of a POST to ``{prefix}/{task}``.

    ``path`` is relative to the base URL the route is served at, with its query. ``relay``
    says whether the receiving route takes relay hops (a task due beyond Cloud Tasks' 30-day
    horizon); a plain FastAPI route does not, so such a message is refused at send time.
    """

    path: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    relay: bool = False


@dataclass(frozen=True, slots=True)
class Destination:
    """Where and how Cloud Tasks delivers a message: everything a transport needs besides
    the message itself.

    ``queue_path`` is the full queue name (``projects/P/locations/L/queues/Q``), ``url`` the
    URL called with ``method``; ``deadline`` the dispatch deadline in seconds (``None``: the
    service's default); ``service_account`` signs an OIDC token for ``audience``; ``relay``
    whether the endpoint takes relay hops.
    """

    queue_path: str
    url: str
    method: str = "POST"
    deadline: float | None = None
    service_account: str | None = None
    audience: str | None = None
    relay: bool = True


@dataclass(frozen=True, slots=True)
class Message:
    """One task call on its way from the call site to a worker.

    ``body`` is the JSON object of the bound arguments, by parameter name. ``trace`` holds
    the trace headers it carries (``traceparent``, ``tracestate``, ``X-Cloud-Trace-Context``:
    :mod:`celery_gcp.tracing`), sent as they are.
    """

    task: str
    id: str
    body: bytes
    retries: int = 0
    queue: str | None = None
    eta: datetime | None = None
    expires: datetime | None = None
    root_id: str | None = None
    parent_id: str | None = None
    link: tuple[Signature, ...] = ()
    link_error: tuple[Signature, ...] = ()
    headers: Mapping[str, Any] = field(default_factory=dict)
    target: HttpTarget | None = None
    destination: Destination | None = None
    trace: Mapping[str, str] = field(default_factory=dict)

    def http_headers(self) -> dict[str, str]:
        """The HTTP headers that carry this message's metadata (and its content type)."""
        target = self.target
        out = {} if target is None else dict(target.headers)
        if self.body or target is None:
            out["Content-Type"] = CONTENT_TYPE
        out.update({
            _H_VERSION: str(VERSION),
            _H_ID: self.id,
            _H_RETRIES: str(self.retries),
        })
        if self.queue is not None:
            out[_H_QUEUE] = self.queue
        if self.eta is not None:
            out[_H_ETA] = self.eta.isoformat()
        if self.expires is not None:
            out[_H_EXPIRES] = self.expires.isoformat()
        if self.root_id is not None:
            out[_H_ROOT] = self.root_id
        if self.parent_id is not None:
            out[_H_PARENT] = self.parent_id
        if self.link:
            out[_H_LINK] = _dumps(list(self.link))
        if self.link_error:
            out[_H_LINK_ERROR] = _dumps(list(self.link_error))
        if self.headers:
            out[_H_HEADERS] = _dumps(dict(self.headers))
        if self.trace:
            out.update(self.trace)
        return out

    @classmethod
    def from_http(cls, task: str, headers: Mapping[str, str], body: bytes) -> Message:
        """Decode a message from a request; raises :class:`MessageDecodeError` on bad metadata.

        ``headers`` is looked up by lower-case names: pass a dict with lower-case keys (as
        ASGI gives them) or a case-insensitive mapping such as Starlette's ``Headers``.
        """
        version = headers.get(_L_VERSION, str(VERSION))
        if version != str(VERSION):
            raise MessageDecodeError(
                f"{_H_VERSION} is {version!r}; this worker reads version {VERSION}: "
                "deploy the same celery_gcp version on senders and workers"
            )
        task_id = headers.get(_L_ID)
        if not task_id:
            raise MessageDecodeError(f"missing {_H_ID} header")
        return cls(
            task=task,
            id=task_id,
            body=body,
            retries=_retries(headers.get(_L_RETRIES)),
            queue=headers.get(_L_QUEUE),
            eta=_datetime(_H_ETA, headers.get(_L_ETA)),
            expires=_datetime(_H_EXPIRES, headers.get(_L_EXPIRES)),
            root_id=headers.get(_L_ROOT),
            parent_id=headers.get(_L_PARENT),
            link=_signatures(_H_LINK, headers.get(_L_LINK)),
            link_error=_signatures(_H_LINK_ERROR, headers.get(_L_LINK_ERROR)),
            headers=_object(_H_HEADERS, headers.get(_L_HEADERS)),
            trace=_trace(headers),
        )

    def arguments(self) -> dict[str, Any]:
        """The body as plain JSON values (not validated against the task's signature)."""
        value = json.loads(self.body)
        if not isinstance(value, dict):
            raise MessageDecodeError("the body must be a JSON object of arguments by name")
        return value


def new_id() -> str:
    """A random (version 4) UUID string, the default task id; faster than ``uuid.uuid4()``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def checked_id(task_id: str) -> str:
    """``task_id`` if it can travel in an HTTP header (``X-Celery-Task-Id``), else
    :class:`TaskArgumentError` at the call site rather than a failed dispatch later."""
    if task_id and task_id.isascii() and task_id.isprintable() and task_id == task_id.strip():
        return task_id
    raise TaskArgumentError(
        f"task_id {task_id!r} cannot be sent: a task id travels in an HTTP header, so it must "
        "be printable ASCII without leading or trailing spaces (a uuid, or e.g. 'report-42')")


def _trace(headers: Mapping[str, str]) -> dict[str, str]:
    """The trace headers of a delivery, kept as sent (a relay hop sends them on)."""
    if "traceparent" not in headers and "x-cloud-trace-context" not in headers:
        return {}
    return {name: headers[name] for name in ("traceparent", "tracestate",
                                             "x-cloud-trace-context") if name in headers}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def _retries(raw: str | None) -> int:
    if raw is None:
        return 0
    if not _DIGITS.match(raw):  # ASCII digits only: str.isdigit() also takes "²"
        raise MessageDecodeError(f"{_H_RETRIES} must be a non-negative integer, got {raw!r}")
    return int(raw)


def _datetime(name: str, raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
        value.astimezone(UTC)  # within range in every zone
    except (ValueError, OverflowError):
        raise MessageDecodeError(f"{name} must be an ISO 8601 datetime, got {raw!r}") from None
    if value.tzinfo is None:  # the sender always gives one: a naive time is ambiguous
        raise MessageDecodeError(f"{name} must include a time zone, got {raw!r}")
    return value


def _json(name: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise MessageDecodeError(f"{name} must be JSON, got {raw[:100]!r}") from None


# The types of a signature's fields, and of the options a callback is sent with.
_SIGNATURE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "task": str, "args": list, "kwargs": dict, "options": dict,
    "subtask_type": (str, type(None)), "immutable": bool}
_OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "countdown": (int, float), "eta": str, "expires": (int, float, str), "queue": str,
    "task_id": str, "retries": int, "headers": dict, "link": (dict, list),
    "link_error": (dict, list)}


def _signatures(name: str, raw: str | None) -> tuple[Signature, ...]:
    if raw is None:
        return ()
    value = _json(name, raw)
    if not isinstance(value, list) or not all(_is_signature(s) for s in value):
        raise MessageDecodeError(
            f"{name} must be a JSON list of signatures: 'task' a name, 'args' a list, "
            "'kwargs' and 'options' objects (countdown a number, queue and task_id strings)")
    return tuple(value)


def _is_signature(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("task"), str):
        return False
    for key, kind in _SIGNATURE_FIELDS.items():
        if key in value and not isinstance(value[key], kind):
            return False
    options = value.get("options") or {}
    return all(not isinstance(v, bool) and isinstance(v, _OPTION_TYPES[k])
               for k, v in options.items() if k in _OPTION_TYPES and v is not None)


def _object(name: str, raw: str | None) -> Mapping[str, Any]:
    if raw is None:
        return {}
    value = _json(name, raw)
    if not isinstance(value, dict):
        raise MessageDecodeError(f"{name} must be a JSON object")
    return value
