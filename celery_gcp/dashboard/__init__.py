"""A live web page of an app's queues, tasks, periodic jobs and finished tasks, with actions.

It reads only what a project has in production: the Cloud Tasks and Cloud Scheduler APIs,
through the official clients (so the same page works over the emulator, where ``celery-gcp
dev`` serves it, and against a real project with your credentials: ``celery-gcp dashboard
-A proj``), and the app's result store. It is read-only unless made with ``actions=True``:
then run now, delete, pause / resume / purge a queue and fire a job now are POST forms,
each carrying a token only the page holds (so another site cannot post them).

Example::

    import uvicorn
    from celery_gcp.dashboard import dashboard_app

    uvicorn.run(dashboard_app(app, actions=True), port=8001)
"""

from __future__ import annotations

import functools
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..app import Celery

__all__ = ["dashboard_app"]

_QUEUE_ACTIONS = ("pause", "resume", "purge")
_TASK_ACTIONS = ("run", "delete")


def dashboard_app(app: Celery, *, actions: bool = False, clients: tuple[Any, Any] | None = None,
                  ) -> Starlette:
    """The dashboard of ``app`` as an ASGI app (Starlette). ``clients``: the Cloud Tasks and
    Cloud Scheduler clients to read through (default: the official ones, made on first use,
    the emulator's when its variables are set)."""
    from google.api_core import exceptions as gexc
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route

    from .. import gcp
    from . import data, pages

    token = secrets.token_urlsafe(24) if actions else None
    made: list[tuple[Any, Any]] = [clients] if clients is not None else []

    def client_pair() -> tuple[Any, Any]:
        if not made:
            made.append((gcp.tasks_client(), gcp.scheduler_client()))
        return made[0]

    async def index(request: Request) -> Response:
        snapshot = await run_in_threadpool(data.read, app, client_pair())
        if request.query_params.get("part") == "main":
            return HTMLResponse(pages.main_part(snapshot, token))
        return HTMLResponse(pages.page(app.main or "app", snapshot, token))

    async def queue(request: Request) -> Response:
        queue_id = request.path_params["queue"]
        try:
            view = await run_in_threadpool(data.read_queue, app, client_pair(), queue_id,
                                           request.query_params.get("page", ""))
        except gexc.NotFound:
            return PlainTextResponse(f"queue {queue_id} does not exist", status_code=404)
        except gexc.InvalidArgument as exc:  # a page token from an older listing
            return PlainTextResponse(f"queue {queue_id}: {exc.message}", status_code=400)
        where, _ = data.locations(app)
        return HTMLResponse(pages.queue_page(app.main or "app", where, view, token))

    async def task(request: Request) -> Response:
        queue_id, task_id = request.path_params["queue"], request.path_params["task"]
        try:
            view, meta = await run_in_threadpool(data.read_task, app, client_pair(), queue_id,
                                                 task_id)
        except gexc.NotFound:
            return PlainTextResponse(f"task {task_id} of queue {queue_id} no longer exists "
                                     "(it ran, or was deleted)", status_code=404)
        where, _ = data.locations(app)
        return HTMLResponse(pages.task_page(app.main or "app", where, view, meta, token))

    async def act(request: Request) -> Response:
        if token is None:
            return PlainTextResponse("this dashboard is read-only: start it with "
                                     "--allow-actions (celery-gcp dashboard) to act",
                                     status_code=403)
        # The forms are urlencoded: parsed here, without python-multipart.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if not secrets.compare_digest((form.get("token") or [""])[0], token):
            return PlainTextResponse("the form's token is not this page's: reload the page",
                                     status_code=403)
        params = request.path_params
        kind, op = params["kind"], params["op"]
        where, job_where = data.locations(app)
        tasks_client, scheduler_client = client_pair()
        target = params["target"]
        call: Any = None
        if kind == "queues" and op in _QUEUE_ACTIONS and "task" not in params:
            call = functools.partial(getattr(tasks_client, f"{op}_queue"),
                                     name=f"{where}/queues/{target}")
        elif kind == "tasks" and op in _TASK_ACTIONS and "task" in params:
            call = functools.partial(getattr(tasks_client, f"{op}_task"),
                                     name=f"{where}/queues/{target}/tasks/{params['task']}")
        elif kind == "jobs" and op == "run" and "task" not in params:
            call = functools.partial(scheduler_client.run_job, name=f"{job_where}/jobs/{target}")
        if call is None:
            return PlainTextResponse(f"no action {op!r} on {kind}", status_code=404)
        try:
            await run_in_threadpool(call)
        except gexc.GoogleAPICallError as exc:
            return PlainTextResponse(f"{op} failed: {exc.message or exc}", status_code=409)
        back = "../" * (3 if kind != "tasks" else 4)
        return RedirectResponse(back, status_code=303)

    return Starlette(routes=[
        Route("/", index),
        Route("/queues/{queue}", queue),
        Route("/tasks/{queue}/{task}", task),
        Route("/actions/{kind}/{target}/{op}", act, methods=["POST"]),
        Route("/actions/{kind}/{target}/{task}/{op}", act, methods=["POST"]),
    ])
