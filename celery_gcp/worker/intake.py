"""The intake step of the delivery pipeline: what every task, beat and unknown-task request
passes before FastAPI reads it.

In order: the caller (401/403, see :mod:`celery_gcp.auth`), the size (413, over Cloud Tasks'
1 MB, refused before the body is read past the limit), the content type (415: a body must be
JSON) and the JSON itself (400, UTF-8 only). Only then does FastAPI validate the body against
the task's schema (422, with a bounded detail: :func:`invalid`) and run the endpoint. No
malformed request gets as far as a task, and a caller that hangs up mid-body is one INFO line.
"""

from __future__ import annotations

import codecs
import json
import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from fastapi.exceptions import RequestValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ..exceptions import AuthError
from ..platform import MAX_TASK_BYTES

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["MAX_BODY", "MAX_DETAIL_BYTES", "MAX_ERRORS", "MAX_LOC", "MAX_TEXT", "Intake",
           "intake", "invalid"]

logger = logging.getLogger("celery_gcp.worker")

#: The largest body taken: Cloud Tasks' task size limit.
MAX_BODY = MAX_TASK_BYTES
#: The most validation errors a 422 answer lists (``error_count`` says how many there are).
MAX_ERRORS = 20
#: The bytes of errors a 422 answer lists: with one error of at most ~12 KB (the first is
#: always listed), an answer is under 32 KB.
MAX_DETAIL_BYTES = 16 * 1024
#: The most characters of an error's ``msg``, ``type`` and of each part of its ``loc``.
MAX_TEXT = 100
#: The most parts of an error's ``loc`` listed (the outermost ones).
MAX_LOC = 8


class Intake(NamedTuple):
    """What the intake step read: the body, and its JSON (``None`` for an empty body)."""

    body: bytes
    json: Any


async def intake(app: Celery, request: Request) -> Intake | Response:
    """What the request carries if it may go on, else the answer that refuses it."""
    verifier = app.verifier
    if verifier.enabled:
        try:
            # The path as routed (not re-escaped): the URL the sender signed the token for.
            await verifier.verify(request.headers.get("authorization"), request.scope["path"])
        except AuthError as exc:
            logger.warning("refused %s %s from %s: %s", request.method, request.url.path,
                           _client(request), exc.reason)
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return JSONResponse({"detail": exc.reason}, exc.status, headers=headers)
    length = request.headers.get("content-length")
    digits = length is not None and length.isascii() and length.isdigit()  # not "²"
    if length is not None and (not digits or int(length) > MAX_BODY):
        return _refuse(413 if digits else 400,
                       f"body over {MAX_BODY:,} bytes" if digits else "bad Content-Length")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _refuse(413, f"body over {MAX_BODY:,} bytes")
    except ClientDisconnect:
        # The caller hung up mid-body (a dispatch deadline, a dropped connection): nothing
        # is wrong here, and nobody reads an answer. Cloud Tasks delivers the task again.
        logger.info("%s %s from %s: the caller hung up after %d bytes of the body",
                    request.method, request.url.path, _client(request), len(body))
        return _refuse(400, "incomplete body")
    if not body:
        return Intake(b"", None)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        return _refuse(415, f"content type {kind or '(none)'!r}: send application/json")
    return _parsed(bytes(body))


def _parsed(body: bytes) -> Intake | Response:
    """The body's JSON, which must be UTF-8 (RFC 8259): ``json.loads`` alone would also take
    UTF-16 and UTF-32, and a byte-order mark."""
    # JSON text never holds a NUL byte (not even in a string): UTF-16 or UTF-32 does.
    if b"\0" in body or body.startswith(codecs.BOM_UTF8):
        return _refuse(400, "malformed JSON body: not UTF-8 (or with a byte-order mark)")
    try:
        parsed = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return _refuse(400, "malformed JSON body: not UTF-8")
    except ValueError as exc:
        return _refuse(400, f"malformed JSON body: {exc}")
    except RecursionError:
        return _refuse(400, "malformed JSON body: nested too deeply")
    return Intake(body, parsed)


def _refuse(status: int, detail: str) -> Response:
    return JSONResponse({"detail": detail}, status)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def invalid(exc: RequestValidationError) -> Response:
    """422 for a body that does not match the task's schema: where and why, for the first
    errors (at most :data:`MAX_ERRORS`, while they fit in :data:`MAX_DETAIL_BYTES`; the first
    always does), and how many there are (``error_count``).

    FastAPI's own answer lists every error with the bad value: values that may not encode
    (NaN, a lone surrogate), and for a 1 MB body of bad array items, tens of megabytes.
    """
    errors = exc.errors()
    detail: list[dict[str, Any]] = []
    size = 0
    for error in errors[:MAX_ERRORS]:
        item = {"type": _text(error.get("type")),
                "loc": [_part(part) for part in error.get("loc", ())[:MAX_LOC]],
                "msg": _text(error.get("msg"))}
        size += len(_dumps(item)) + 1
        if detail and size > MAX_DETAIL_BYTES:
            break
        detail.append(item)
    body = _dumps({"detail": detail, "error_count": len(errors)})
    return Response(body, 422, media_type="application/json")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=True, allow_nan=False)


def _text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."


def _part(value: Any) -> int | str:
    # A location is field names and list indices; a name comes from the body (a dict key).
    return value if isinstance(value, int) and not isinstance(value, bool) else _text(value)
