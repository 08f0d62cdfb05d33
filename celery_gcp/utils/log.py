"""Loggers and formats, mirroring :mod:`celery.utils.log`.

``get_task_logger(__name__)`` returns a logger whose parent is ``celery.task``, as in Celery, so
existing logging configuration for Celery's task loggers keeps applying. Records made while a
task is handled carry its fields (:mod:`celery_gcp.logfields`); :class:`TaskFormatter` with
:data:`TASK_LOG_FORMAT` prints them as Celery's worker does::

    [2026-12-02 10:00:00,000: INFO/MainProcess] proj.add[0f3c...]: adding 2 + 3
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["LOG_FORMAT", "TASK_LOG_FORMAT", "TaskFormatter", "get_logger", "get_task_logger",
           "task_logger", "worker_logger"]

#: Celery's ``worker_log_format``: the worker's own lines.
LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
#: Celery's ``worker_task_log_format``: lines logged while a task runs.
TASK_LOG_FORMAT = ("[%(asctime)s: %(levelname)s/%(processName)s] "
                   "%(task_name)s[%(task_id)s]: %(message)s")


class TaskFormatter(logging.Formatter):
    """Celery's task formatter: ``%(task_name)s`` and ``%(task_id)s`` are the task's, or
    ``???`` for a line logged outside a task.

    Example::

        handler.setFormatter(TaskFormatter(TASK_LOG_FORMAT))
    """

    def format(self, record: logging.LogRecord) -> str:
        values: dict[str, Any] = record.__dict__
        missing = [name for name in ("task_name", "task_id") if values.get(name) is None]
        if not missing:
            return super().format(record)
        kept = {name: values.get(name) for name in missing}
        values.update(dict.fromkeys(missing, "???"))
        try:
            return super().format(record)
        finally:  # other handlers of the record still see None
            values.update(kept)

task_logger = logging.getLogger("celery.task")
worker_logger = logging.getLogger("celery.worker")

#: The names Celery refuses for task loggers: the task loggers' own parents.
_RESERVED = frozenset({"celery", "celery.task"})


def get_logger(name: str) -> logging.Logger:
    """Return the logger called ``name``."""
    return logging.getLogger(name)


def get_task_logger(name: str) -> logging.Logger:
    """Return a logger for task code, a descendant of ``celery.task``.

    A logger already below ``celery.task`` keeps its parent; any other becomes a child of
    ``celery.task``. Raises ``RuntimeError`` (as Celery does) for ``celery`` and
    ``celery.task``, and for any logger above ``celery.task`` (the root logger): making it a
    child of its own descendant would send every later log call round a loop.

    Example::

        logger = get_task_logger(__name__)

        @app.task
        def add(x: int, y: int) -> int:
            logger.info("adding %s + %s", x, y)
            return x + y
    """
    logger = logging.getLogger(name)
    if name in _RESERVED or _descends(task_logger, logger):
        raise RuntimeError(
            f"get_task_logger({name!r}): logger {logger.name!r} is reserved, as an ancestor of "
            "every task logger ('celery.task'); name the logger after your module: "
            "get_task_logger(__name__)"
        )
    if not _descends(logger, task_logger):
        logger.parent = task_logger
    return logger


def _descends(logger: logging.Logger, ancestor: logging.Logger) -> bool:
    """Whether ``ancestor`` is ``logger`` or one of its parents."""
    seen: set[int] = set()
    node: logging.Logger | None = logger
    while node is not None and id(node) not in seen:  # a hierarchy looped elsewhere ends too
        if node is ancestor:
            return True
        seen.add(id(node))
        node = node.parent
    return False
