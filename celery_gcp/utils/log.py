"""Loggers, mirroring :mod:`celery.utils.log`.

``get_task_logger(__name__)`` returns a logger whose parent is ``celery.task``, as in Celery, so
existing logging configuration for Celery's task loggers keeps applying.
"""

from __future__ import annotations

import logging

__all__ = ["get_logger", "get_task_logger", "task_logger", "worker_logger"]

task_logger = logging.getLogger("celery.task")
worker_logger = logging.getLogger("celery.worker")


def get_logger(name: str) -> logging.Logger:
    """Return the logger called ``name``."""
    return logging.getLogger(name)


def get_task_logger(name: str) -> logging.Logger:
    """Return a logger for task code, a child of ``celery.task``.

    Example::

        logger = get_task_logger(__name__)

        @app.task
        def add(x: int, y: int) -> int:
            logger.info("adding %s + %s", x, y)
            return x + y
    """
    if name in {"celery.task", "celery.worker"}:
        raise RuntimeError(f"logger name {name!r} is reserved for celery_gcp's own loggers")
    logger = logging.getLogger(name)
    logger.parent = task_logger
    return logger
