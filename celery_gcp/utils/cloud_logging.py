"""Worker logging: Celery's log setup, and Cloud Logging's structured format on Cloud Run.

:func:`setup_logging` is what ``celery-gcp worker`` (and a worker app served on Cloud Run)
does at start, as Celery's worker does: unless a ``setup_logging`` signal receiver takes over,
it puts one handler on the root logger (``worker_hijack_root_logger``: replacing the ones
there) that prints the worker's lines with ``worker_log_format`` and a task's with
``worker_task_log_format``, or, with ``worker_log_json`` (automatic on Cloud Run, where
``K_SERVICE`` is set), one JSON object per line in Cloud Logging's structured format
(:class:`CloudLoggingFormatter`), so a task's lines and the request that sent it group under
one trace in the Logs Explorer.

The JSON format is written here rather than taken from google-cloud-logging: importing its
handler loads its API clients, which would add a large part of a worker's cold start.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import logfields
from .log import LOG_FORMAT, TASK_LOG_FORMAT, TaskFormatter, task_logger

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["CloudLoggingFormatter", "WorkerFormatter", "setup_logging", "structured"]

# logging's levels as Cloud Logging's severities.
_SEVERITY = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARNING",
             logging.ERROR: "ERROR", logging.CRITICAL: "CRITICAL"}
#: The record fields sent as the entry's labels.
LABELS = ("task_id", "task_name", "task_retries", "task_queue", "cloudtasks_task_name")


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record, in Cloud Logging's structured format: ``severity``,
    ``message`` (with the traceback), ``time``, ``logging.googleapis.com/sourceLocation``,
    ``logging.googleapis.com/trace`` (``projects/P/traces/T``, with ``project``) and
    ``spanId``, and the task fields as ``logging.googleapis.com/labels``.

    Example::

        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(CloudLoggingFormatter(project="my-project"))
    """

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        values = record.__dict__
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{''.join(traceback.format_exception(*record.exc_info))}"
        elif record.exc_text:
            message = f"{message}\n{record.exc_text}"
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": message.rstrip("\n"),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname, "line": str(record.lineno),
                "function": record.funcName},
        }
        trace_id = values.get("trace_id")
        if trace_id and self.project:
            entry["logging.googleapis.com/trace"] = f"projects/{self.project}/traces/{trace_id}"
            entry["logging.googleapis.com/spanId"] = values.get("span_id")
        labels = {name: str(values[name]) for name in LABELS if values.get(name) is not None}
        if labels:
            entry["logging.googleapis.com/labels"] = labels
        return json.dumps(entry, ensure_ascii=False, default=str)


class WorkerFormatter(TaskFormatter):
    """Celery's worker formatter: a task's lines in ``task_format``, the others in
    ``fmt``."""

    def __init__(self, fmt: str = LOG_FORMAT, task_format: str = TASK_LOG_FORMAT) -> None:
        super().__init__(fmt)
        self._task = TaskFormatter(task_format)

    def format(self, record: logging.LogRecord) -> str:
        if record.__dict__.get("task_id") is not None:
            return self._task.format(record)
        return super().format(record)


def structured(app: Celery) -> bool:
    """Whether the worker logs JSON for Cloud Logging: ``worker_log_json``, or on Cloud Run
    (``K_SERVICE`` is set) when it is not set."""
    setting = app.conf.get("worker_log_json")
    return bool(os.environ.get("K_SERVICE")) if setting is None else bool(setting)


def setup_logging(app: Celery, loglevel: int | str | None = None) -> bool:
    """Set up the worker's logging as Celery's worker does (see the module docstring);
    returns whether it did (``False``: a ``setup_logging`` receiver took over). Record
    fields are installed either way. Calling it again changes nothing."""
    from .. import signals

    logfields.install()
    root = logging.getLogger()
    level = logging.getLevelName(loglevel.upper()) if isinstance(loglevel, str) else loglevel
    if signals.setup_logging.receivers:
        signals.setup_logging.send(sender=None, loglevel=level, logfile=None,
                                   format=app.conf.get("worker_log_format"), colorize=False)
        return False
    if any(getattr(h, "_celery_gcp", False) for h in root.handlers):
        return True
    handler = logging.StreamHandler(sys.stdout)
    if structured(app):
        handler.setFormatter(CloudLoggingFormatter(project=app.conf.get("gcp_project")))
    else:
        handler.setFormatter(WorkerFormatter(
            app.conf.get("worker_log_format") or LOG_FORMAT,
            app.conf.get("worker_task_log_format") or TASK_LOG_FORMAT))
    handler._celery_gcp = True  # type: ignore[attr-defined]
    hijack = app.conf.get("worker_hijack_root_logger")
    if hijack is None or hijack:
        for old in list(root.handlers):
            root.removeHandler(old)
    root.addHandler(handler)
    if level is not None:
        root.setLevel(level)
    signals.after_setup_logger.send(sender=None, logger=root, loglevel=level, logfile=None,
                                    format=app.conf.get("worker_log_format"), colorize=False)
    signals.after_setup_task_logger.send(sender=None, logger=task_logger, loglevel=level,
                                         logfile=None, colorize=False,
                                         format=app.conf.get("worker_task_log_format"))
    return True
