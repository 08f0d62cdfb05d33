"""Task fields on every log record made while a task is handled, for any formatter to use.

Once :func:`install` ran (the worker and eager runs do it), each ``logging.LogRecord`` has
these attributes (``None`` outside a task):

======================== ===============================================================
``task_id``              the task's id (``self.request.id``)
``task_name``            its name
``task_retries``         how many times it was retried before this run
``task_queue``           its queue
``cloudtasks_task_name`` the Cloud Tasks task being delivered (``X-CloudTasks-TaskName``)
``trace_id``             the current trace (:mod:`celery_gcp.tracing`), 32 hex digits
``span_id``              the span the current trace continues from, 16 hex digits
======================== ===============================================================

They are taken when the record is made, so a handler that formats it later, on another
thread, sees them too. While a task runs they come from its request; while the worker
handles a delivery outside the run (a refused caller, an expired or revoked task, a relay
hop), from the delivery's headers (:func:`delivering`).

Example::

    logging.basicConfig(format="%(task_name)s[%(task_id)s]: %(message)s")
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from . import tracing
from .context import top_request

__all__ = ["FIELDS", "delivering", "done", "install", "task_fields"]

#: The attributes :func:`install` puts on every record.
FIELDS = ("task_id", "task_name", "task_retries", "task_queue", "cloudtasks_task_name",
          "trace_id", "span_id")

_NONE: dict[str, Any] = dict.fromkeys(FIELDS)
_delivery: ContextVar[dict[str, Any] | None] = ContextVar("celery_gcp_log_delivery",
                                                         default=None)
_lock = threading.Lock()
_installed: Callable[..., logging.LogRecord] | None = None


def task_fields() -> dict[str, Any] | None:
    """The task fields of this moment (the running task's, else the delivery's), without
    the trace; ``None`` outside a task."""
    top = top_request()
    if top is not None and not top[1].called_directly:
        request = top[1]
        info = request.delivery_info or {}
        cloudtasks = request.cloudtasks
        return {"task_id": request.id, "task_name": request.task,
                "task_retries": request.retries, "task_queue": info.get("queue"),
                "cloudtasks_task_name": cloudtasks.task_name if cloudtasks else None}
    return _delivery.get()


def delivering(fields: dict[str, Any]) -> Token[dict[str, Any] | None]:
    """Name the delivery being handled (its task fields) until :func:`done`."""
    return _delivery.set(fields)


def done(token: Token[dict[str, Any] | None]) -> None:
    """Undo :func:`delivering`."""
    _delivery.reset(token)


def install() -> None:
    """Put the task fields on every log record from now on (idempotent; wraps the record
    factory in place, so other factories keep working)."""
    global _installed
    with _lock:
        current = logging.getLogRecordFactory()
        if current is _installed:
            return
        previous = current

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            values = record.__dict__
            values.update(_NONE)
            fields = task_fields()
            if fields is not None:
                values.update(fields)
            trace = tracing.current()
            if trace is not None:
                values["trace_id"], values["span_id"] = trace.trace_id, trace.span_id
            return record

        _installed = factory
        logging.setLogRecordFactory(factory)
