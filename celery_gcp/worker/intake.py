"""The intake step of the delivery pipeline: what every task, beat and unknown-task request
passes before FastAPI reads it.

In order: the caller (401/403, see :mod:`celery_gcp.auth`), the size (413, over Cloud Tasks'
1 MB, refused before the body is read past the limit), the content type (415: a body must be
JSON) and the JSON itself (400). Only then does FastAPI validate the body against the task's
schema (422) and run the endpoint. No malformed request gets as far as a task.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..exceptions import AuthError
from ..platform import MAX_TASK_BYTES

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["MAX_BODY", "Intake", "intake", "invalid"]

logger = logging.getLogger("celery_gcp.worker")

#: The largest body taken: Cloud Tasks' task size limit.
MAX_BODY = MAX_TASK_BYTES


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
            client = request.client.host if request.client else "?"
            logger.warning("refused %s %s from %s: %s", request.method, request.url.path,
                           client, exc.reason)
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return JSONResponse({"detail": exc.reason}, exc.status, headers=headers)
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return _refuse(413 if length.isdigit() else 400,
                       f"body over {MAX_BODY:,} bytes" if length.isdigit()
                       else "bad Content-Length")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return _refuse(413, f"body over {MAX_BODY:,} bytes")
    if not body:
        return Intake(b"", None)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        return _refuse(415, f"content type {kind or '(none)'!r}: send application/json")
    try:
        parsed = json.loads(body)
    except ValueError as exc:  # includes bytes that are not UTF-8
        return _refuse(400, f"malformed JSON body: {exc}")
    except RecursionError:
        return _refuse(400, "malformed JSON body: nested too deeply")
    return Intake(bytes(body), parsed)


def _refuse(status: int, detail: str) -> Response:
    return JSONResponse({"detail": detail}, status)


def invalid(exc: RequestValidationError) -> Response:
    """422 for a body that does not match the task's schema. FastAPI's own answer echoes each
    bad value, which may not be encodable (NaN, a lone surrogate): say where and why only."""
    detail = [{"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
              for e in exc.errors()]
    body = json.dumps({"detail": detail}, default=str, ensure_ascii=True, allow_nan=False)
    return Response(body, 422, media_type="application/json")
