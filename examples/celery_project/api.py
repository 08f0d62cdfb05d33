"""The FastAPI front: POST starts a report, GET reads its state and result."""

from celery.result import AsyncResult
from fastapi import FastAPI

from .tasks import build_report

api = FastAPI()


@api.post("/reports/{kind}")
def start_report(kind: str) -> dict[str, str]:
    """Start building a report; answers the task id to poll."""
    return {"task_id": build_report.delay(kind).id}


@api.get("/reports/status/{task_id}")
def report_status(task_id: str) -> dict[str, object]:
    """The report task's state, and its result once it has one."""
    result = AsyncResult(task_id)
    return {"state": result.state, "result": result.result if result.ready() else None}
