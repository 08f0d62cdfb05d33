"""Tasks as a Celery project writes them; only the import changed (celery -> celery_gcp).

Run them end to end, through the local Cloud Tasks emulator and a worker over real HTTP:

    celery-gcp -A examples.quickstart.tasks dev \
        --run examples.quickstart.tasks:demo --exit-when-idle
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery_gcp import Celery, Task
from celery_gcp.utils.log import get_task_logger

app = Celery("quickstart")
app.conf.update(task_default_queue="default", timezone="UTC")
logger = get_task_logger(__name__)


@app.task
def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


@app.task
def remind(message: str, due: datetime) -> str:
    """Sent with a countdown; arrives with ``due`` as a real datetime."""
    return f"{message} (due {due:%H:%M:%S})"


@app.task(bind=True, max_retries=3, default_retry_delay=1)
def flaky_fetch(self: Task[..., str], url: str) -> str:
    """Fails twice, then succeeds: each retry is a new Cloud Tasks task with the same id."""
    if self.request.retries < 2:
        raise self.retry(exc=ConnectionError(f"{url} timed out"))
    return f"fetched {url} after {self.request.retries} retries"


def demo() -> None:
    """Send a plain task and wait for its result (``dev`` keeps results in SQLite), then a
    countdown task and a task that retries."""
    print("add(2, 3) =", add.delay(2, 3).get(timeout=30))
    remind.apply_async(("stand up", datetime.now(UTC) + timedelta(seconds=2)), countdown=2)
    flaky_fetch.delay("https://example.com/feed")
