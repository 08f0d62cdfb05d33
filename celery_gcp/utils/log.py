"""Loggers, mirroring :mod:`celery.utils.log`.

``get_task_logger(__name__)`` returns a logger whose parent is ``celery.task``, as in Celery, so
existing logging configuration for Celery's task loggers keeps applying.
"""

from __future__ import annotations

import logging

__all__ = ["get_logger", "get_task_logger", "task_logger", "worker_logger"]

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
