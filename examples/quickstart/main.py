"""Run the quickstart end to end: tasks are sent, then executed by a worker over real HTTP.

    python examples/quickstart/main.py

The worker is the app's FastAPI router served by uvicorn on a loopback port. Sent messages are
recorded by the memory transport and delivered to the worker when due, the way Cloud Tasks
delivers them, with a line logged for each step. Exits 0 when every task finished as expected.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from celery_gcp import signals
from celery_gcp.testing import drain, serve
from examples.quickstart.tasks import add, app, flaky_fetch, remind

START = time.monotonic()


def log(event: str, text: str) -> None:
    print(f"[{time.monotonic() - START:6.2f}s] {event:<9} {text}", flush=True)


@signals.after_task_publish.connect
def on_sent(sender: str, headers: dict[str, Any], **kwargs: Any) -> None:
    eta = f" eta={headers['eta']}" if headers.get("eta") else ""
    log("sent", f"{sender}[{headers['id'][:8]}] retries={headers['retries']}{eta}")


@signals.task_prerun.connect
def on_started(task: Any, task_id: str, args: Any, kwargs: Any, **_: Any) -> None:
    log("started", f"{task.name}[{task_id[:8]}] args={list(args)} kwargs={kwargs}")


@signals.task_retry.connect
def on_retried(request: Any, reason: Any, **_: Any) -> None:
    log("retried", f"{request.task}[{request.id[:8]}] {reason}")


@signals.task_success.connect
def on_finished(sender: Any, result: Any, **_: Any) -> None:
    log("finished", f"{sender.name}[{sender.request.id[:8]}] -> {result!r}")


@signals.task_failure.connect
def on_failed(sender: Any, task_id: str, exception: BaseException, **_: Any) -> None:
    log("failed", f"{sender.name}[{task_id[:8]}] {exception!r}")


def main() -> int:
    api = FastAPI()
    api.include_router(app.router)
    with serve(api) as url, httpx.Client(base_url=url, timeout=30) as client:
        log("worker", f"serving {len(app.router.routes) - 1} task endpoints at {url}/_tasks")
        add.delay(2, 3)
        remind.apply_async(("stand up", datetime.now(UTC) + timedelta(seconds=2)), countdown=2)
        flaky_fetch.delay("https://example.com/feed")
        delivered = drain(client, app, honour_eta=True, timeout=50)
    states = [response.json()["state"] for _, response in delivered]
    log("done", f"{len(delivered)} deliveries: {', '.join(states)}")
    expected = ["SUCCESS", "RETRY", "RETRY", "SUCCESS", "SUCCESS"]
    return 0 if sorted(states) == sorted(expected) else 1


if __name__ == "__main__":
    sys.exit(main())
