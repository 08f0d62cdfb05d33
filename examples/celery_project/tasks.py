"""The project's tasks: a report that takes a few tries, and a cleanup."""

from celery.utils.log import get_task_logger

from .celery_app import app

logger = get_task_logger(__name__)


class ReportNotReady(Exception):
    """The data for a report is not in yet."""


@app.task(bind=True, max_retries=3, default_retry_delay=1)
def build_report(self, kind: str) -> str:
    """Builds a report; the data source is not ready on the first try."""
    if self.request.retries < 1:
        logger.info("report %s: data not ready, retrying", kind)
        raise self.retry(exc=ReportNotReady(kind))
    return f"{kind} report built after {self.request.retries} retry"


@app.task(autoretry_for=(ConnectionError,), retry_backoff=False, max_retries=2)
def cleanup() -> int:
    """Deletes old rows (a stand-in here) and says how many."""
    return 0
