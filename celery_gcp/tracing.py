"""Trace context across Cloud Tasks: W3C ``traceparent`` / ``tracestate`` and Google's
``X-Cloud-Trace-Context``.

A task sent while a trace is current carries it on its HTTP request (as real headers, so
Cloud Run, FastAPI's OpenTelemetry instrumentation and Cloud Trace see it); the worker makes
the delivery's trace current while the task runs, so what the task sends (other tasks, its
retries, the next chain step, a chord's body) continues it, and its log lines name it.

The current trace is, first match:

1. OpenTelemetry's current span, when its SDK is loaded and a span is current;
2. the trace of the request being handled: a task delivery (the worker sets it), or any
   request that went through :class:`TraceMiddleware` (Cloud Run adds ``traceparent`` and
   ``X-Cloud-Trace-Context`` to every request it forwards).

Nothing here imports a tracing library; without one, a send costs one context lookup.

Example::

    api = FastAPI()
    api.add_middleware(TraceMiddleware)     # .delay() in a route continues its trace
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OPENTELEMETRY", "TRACE_HEADERS", "TraceContext", "TraceMiddleware", "current",
           "request_trace", "reset", "use"]

#: The request headers that carry a trace, lower case (as ASGI gives them).
TRACE_HEADERS = ("traceparent", "tracestate", "x-cloud-trace-context")

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_CLOUD = re.compile(r"^([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?\Z")
_NO_TRACE, _NO_SPAN = "0" * 32, "0" * 16


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A position in a trace: the trace id (32 hex digits), the id of the span a child
    continues from (16 hex digits), whether the trace is sampled, and the vendors'
    ``tracestate``."""

    trace_id: str
    span_id: str
    sampled: bool = True
    tracestate: str | None = None
    # Every send of a traced request hands on the same headers: made once, on first use.
    _headers: dict[str, str] | None = field(default=None, init=False, repr=False,
                                            compare=False)

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> TraceContext | None:
        """The trace of request ``headers`` (lower-case names): ``traceparent`` first, then
        ``X-Cloud-Trace-Context``; ``None`` if neither holds a valid one."""
        parent = headers.get("traceparent")
        if parent:
            found = _TRACEPARENT.match(parent.strip().lower())
            if (found is not None and found[1] != "ff" and found[2] != _NO_TRACE
                    and found[3] != _NO_SPAN):
                return cls(found[2], found[3], bool(int(found[4], 16) & 1),
                           headers.get("tracestate") or None)
        cloud = headers.get("x-cloud-trace-context")
        if cloud:
            found = _CLOUD.match(cloud.strip())
            if found is not None and found[1] != _NO_TRACE:
                span = int(found[2] or 0)
                if 0 < span < 2**64:
                    return cls(found[1].lower(), f"{span:016x}", found[3] != "0")
        return None

    def headers(self) -> dict[str, str]:
        """The headers that hand this trace on (W3C and Google's forms), a new dict each time."""
        made = self._headers
        if made is None:
            flags = "01" if self.sampled else "00"
            out = {"traceparent": f"00-{self.trace_id}-{self.span_id}-{flags}",
                   "X-Cloud-Trace-Context":
                       f"{self.trace_id}/{int(self.span_id, 16)};o={int(self.sampled)}"}
            if self.tracestate:
                out["tracestate"] = self.tracestate
            made = out
            object.__setattr__(self, "_headers", made)  # frozen: set once, as a cache
        return made.copy()


#: The trace of the request being handled (the worker's delivery, or a request through
#: :class:`TraceMiddleware`); :func:`current` also looks at OpenTelemetry's span.
request_trace: ContextVar[TraceContext | None] = ContextVar("celery_gcp_trace", default=None)
_current = request_trace
#: The module whose presence in ``sys.modules`` means OpenTelemetry may have a current span:
#: its SDK (google-api-core imports the API alone when it is installed; without the SDK, or
#: an instrumentation that brings it, no span is ever recorded).
OPENTELEMETRY = "opentelemetry.sdk.trace"


def current() -> TraceContext | None:
    """The trace a send made now continues (see the module docstring), or ``None``."""
    otel = sys.modules.get("opentelemetry.trace") if OPENTELEMETRY in sys.modules else None
    if otel is not None:
        found = _from_opentelemetry(otel)
        if found is not None:
            return found
    return _current.get()


def _from_opentelemetry(otel: Any) -> TraceContext | None:
    context = otel.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    state = context.trace_state.to_header() if context.trace_state else ""
    return TraceContext(f"{context.trace_id:032x}", f"{context.span_id:016x}",
                        bool(context.trace_flags & 1), state or None)


def use(context: TraceContext | None) -> Token[TraceContext | None]:
    """Make ``context`` the current trace (in this thread or asyncio task); undo with
    :func:`reset`."""
    return _current.set(context)


def reset(token: Token[TraceContext | None]) -> None:
    """Undo :func:`use`."""
    _current.reset(token)


class TraceMiddleware:
    """ASGI middleware: each HTTP request's trace is current while it is handled, so a
    ``.delay()`` in a route hands it on to the task.

    Not needed with OpenTelemetry's FastAPI instrumentation (its server span is current).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = TraceContext.from_headers({
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers") or ()
            if name.decode("latin-1") in TRACE_HEADERS})
        token = _current.set(found)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
