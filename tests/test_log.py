"""Task loggers (``celery_gcp.utils.log``): Celery's hierarchy, and the names Celery refuses."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from celery_gcp.utils.log import get_task_logger, task_logger


@pytest.fixture
def hierarchy() -> Iterator[None]:
    """Puts every logger's parent back afterwards: a refused name must not leave a loop
    behind for the tests that follow, even on code that accepts it."""
    loggers = [logging.getLogger(name) for name in ("celery", "celery.task", "celery.worker")]
    loggers += [logging.root, *(v for v in logging.Logger.manager.loggerDict.values()
                                if isinstance(v, logging.Logger))]
    parents = {id(logger): (logger, logger.parent) for logger in loggers}
    yield
    for logger, parent in parents.values():
        logger.parent = parent


@pytest.mark.parametrize("name", ["celery", "celery.task", "root", ""])
def test_get_task_logger_refuses_the_task_loggers_ancestors(
        name: str, hierarchy: None, caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger("celery")  # exists once celery_gcp or Celery logs: celery.task's parent
    with pytest.raises(RuntimeError, match="reserved"):
        get_task_logger(name)
    # The hierarchy is intact: the next log call returns (it looped forever before).
    with caplog.at_level(logging.INFO):
        get_task_logger("proj.tasks").info("still logging")
    assert [r.getMessage() for r in caplog.records] == ["still logging"]


def test_get_task_logger_of_celery_does_not_loop_the_hierarchy(hierarchy: None) -> None:
    celery_logger = logging.getLogger("celery")
    with pytest.raises(RuntimeError):
        get_task_logger("celery")
    assert celery_logger.parent is logging.root
    assert task_logger.parent is celery_logger


def test_task_loggers_keep_a_parent_below_celery_task(hierarchy: None) -> None:
    outer = get_task_logger("proj.jobs")
    inner = get_task_logger("proj.jobs.nightly")
    assert outer.parent is task_logger
    assert inner.parent is outer  # already below celery.task, as Celery leaves it
    assert get_task_logger("celery.task.custom").parent is task_logger
    # Celery takes celery.worker as a task logger too (only celery and celery.task are refused).
    assert get_task_logger("celery.worker").parent is task_logger
