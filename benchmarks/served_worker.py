"""The worker ``results.py`` serves with ``celery-gcp worker`` (1d): one ``async def`` task,
its result store named by ``BENCH_RESULT_BACKEND`` (empty: none)."""

from __future__ import annotations

import os

import celery_gcp

app = celery_gcp.Celery("bench_served", broker_url="memory://", task_auth="none",
                        result_backend=os.environ.get("BENCH_RESULT_BACKEND") or None)


@app.task(name="bench.add")
async def add(x: int, y: int) -> int:
    """Add, asynchronously."""
    return x + y
