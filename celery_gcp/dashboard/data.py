"""What the dashboard shows, read the way a project reads it in production: the Cloud Tasks and
Cloud Scheduler APIs through the official clients (the emulator's when its variables are set),
and the app's result store. Nothing here trusts what it reads: task bodies are decoded as
JSON for display only, and shown as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["JobView", "QueueView", "Snapshot", "TaskView", "read", "read_queue", "read_task"]

#: Tasks listed per queue and per page (the API pages; the main page shows each queue's first,
#: the queue's own page the others), so a queue of 10,000 tasks costs one short page.
TASKS_PER_QUEUE = 100
#: Finished tasks listed from the result store.
FINISHED = 50


@dataclass
class TaskView:
    """One Cloud Tasks task, as the dashboard shows it."""

    queue_id: str
    task_id: str            # the Cloud Tasks task's id (the last part of its name)
    celery_id: str | None   # X-Celery-Task-Id
    name: str               # the Celery task (or route) it runs
    arguments: str          # the JSON body, as text
    eta: datetime | None
    attempts: int
    in_flight: bool
    last_response: str
    retry_reason: str       # why it is waiting again: its last response, its Celery retry
    url: str
    raw: Any = None
    retries: int = 0        # X-Celery-Retries: the Celery retries (self.retry) before it


@dataclass
class QueueView:
    """One Cloud Tasks queue and the first page of its tasks."""

    queue_id: str
    state: str
    rate: float
    burst: int
    concurrency: int
    max_attempts: int
    tasks: list[TaskView] = field(default_factory=list)
    #: The page token of the tasks after :attr:`tasks` ("" when they are all listed).
    more: str = ""

    @property
    def waiting(self) -> int:
        """Tasks listed that are not being dispatched."""
        return sum(not t.in_flight for t in self.tasks)

    @property
    def in_flight(self) -> int:
        """Tasks listed whose attempt is on its way."""
        return sum(t.in_flight for t in self.tasks)


@dataclass
class JobView:
    """One Cloud Scheduler job."""

    job_id: str
    schedule: str
    time_zone: str
    state: str
    next_fire: datetime | None
    last_attempt: datetime | None
    last_status: str
    target: str


@dataclass
class Snapshot:
    """Everything on the dashboard's page at one moment."""

    location: str
    queues: list[QueueView]
    jobs: list[JobView]
    finished: list[dict[str, Any]] | None  # None: the app has no result store
    errors: list[str] = field(default_factory=list)


def locations(app: Celery) -> tuple[str, str]:
    """The app's Cloud Tasks and Cloud Scheduler locations (``projects/P/locations/L``)."""
    from .. import gcp

    conf = app.conf
    project = gcp.project(app)
    tasks = f"projects/{project}/locations/{conf.gcp_location}"
    jobs = f"projects/{project}/locations/{conf.gcp_scheduler_location or conf.gcp_location}"
    return tasks, jobs


def read(app: Celery, clients: tuple[Any, Any]) -> Snapshot:
    """A snapshot of ``app``'s queues, tasks, jobs and finished tasks. A part that cannot be
    read (no permission, no API) is named in :attr:`Snapshot.errors`; the rest is shown."""
    from google.api_core import exceptions as gexc

    tasks_client, scheduler_client = clients
    where, job_where = locations(app)
    errors: list[str] = []
    queues: list[QueueView] = []
    try:
        for queue in tasks_client.list_queues(parent=where):
            view = _queue(queue)
            _list_tasks(app, tasks_client, queue.name, view, "")
            queues.append(view)
        _retry_reasons(app, [t for q in queues for t in q.tasks])
    except gexc.GoogleAPICallError as exc:
        errors.append(f"Cloud Tasks: {exc.message or exc}")
    jobs: list[JobView] = []
    try:
        jobs = [_job(job) for job in scheduler_client.list_jobs(parent=job_where)]
    except gexc.GoogleAPICallError as exc:
        errors.append(f"Cloud Scheduler: {exc.message or exc}")
    finished = None
    store = app.backend
    if store is not None:
        try:
            finished = store.recent(FINISHED)
        except Exception as exc:  # the page still shows the queues
            errors.append(f"result store: {exc}")
            finished = []
    return Snapshot(where, queues, jobs, finished, errors)


def read_queue(app: Celery, clients: tuple[Any, Any], queue_id: str,
               page_token: str = "") -> QueueView:
    """One queue and one page of its tasks (the first, or the one ``page_token`` names)."""
    where, _ = locations(app)
    queue = clients[0].get_queue(name=f"{where}/queues/{queue_id}")
    view = _queue(queue)
    _list_tasks(app, clients[0], queue.name, view, page_token)
    _retry_reasons(app, view.tasks)
    return view


def _list_tasks(app: Celery, tasks_client: Any, queue: str, view: QueueView,
                page_token: str) -> None:
    # One page only: the pager would fetch every page of a long queue.
    page = next(iter(tasks_client.list_tasks(request={
        "parent": queue, "response_view": 2, "page_size": TASKS_PER_QUEUE,
        "page_token": page_token}).pages))
    view.tasks = [_task(view.queue_id, t, app) for t in page.tasks]
    view.more = page.next_page_token


def read_task(app: Celery, clients: tuple[Any, Any], queue_id: str,
              task_id: str) -> tuple[TaskView, dict[str, Any] | None]:
    """One task in full, and its stored result (if the app has a store and it has one)."""
    where, _ = locations(app)
    task = clients[0].get_task(request={"name": f"{where}/queues/{queue_id}/tasks/{task_id}",
                                        "response_view": 2})
    view = _task(queue_id, task, app)
    store = app.backend
    meta = store.get_meta(view.celery_id) if store is not None and view.celery_id else None
    if view.retries:
        view.retry_reason = _retry_reason(view, meta)
    return view, meta


def _retry_reasons(app: Celery, tasks: list[TaskView]) -> None:
    """Name the reason of each Celery retry listed. ``self.retry`` sends a new Cloud Tasks
    task, so Cloud Tasks knows no reason for it; the result store keeps it, as the RETRY
    state's exception. Only retried tasks are looked up (one read each, of a listed page)."""
    store = app.backend
    for view in tasks:
        if not view.retries:
            continue
        meta = None
        if store is not None and view.celery_id:
            try:
                meta = store.get_meta(view.celery_id)
            except Exception:  # the page still shows the task; read() names a broken store
                meta = None
        view.retry_reason = _retry_reason(view, meta)


def _retry_reason(view: TaskView, meta: dict[str, Any] | None) -> str:
    """"retry N: ExcType: message" (the stored RETRY state's), then the last response."""
    reason = f"retry {view.retries}"
    result = meta.get("result") if meta and meta.get("status") == "RETRY" else None
    if isinstance(result, dict) and result.get("exc_type"):
        detail = result.get("exc_message")
        if isinstance(detail, list | tuple):
            detail = ", ".join(map(str, detail))
        reason += f": {result['exc_type']}" + (f": {detail}" if detail else "")
    return "; ".join(filter(None, [reason, view.retry_reason]))


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _time(stamp: Any) -> datetime | None:
    """A timestamp field as the official client gives it (a datetime; the epoch: unset)."""
    if not isinstance(stamp, datetime) or stamp.timestamp() == 0:
        return None
    return stamp.astimezone(UTC)


def _queue(queue: Any) -> QueueView:
    rate, retry = queue.rate_limits, queue.retry_config
    return QueueView(_short(queue.name), queue.state.name, rate.max_dispatches_per_second,
                     rate.max_burst_size, rate.max_concurrent_dispatches, retry.max_attempts)


def _task(queue_id: str, task: Any, app: Celery) -> TaskView:
    request = task.http_request
    headers = {k.lower(): v for k, v in request.headers.items()}
    path = request.url.split("?", 1)[0]
    prefix = app.conf.task_endpoint_prefix.rstrip("/") + "/"
    marker = path.find(prefix, path.find("//") + 2)
    name = path[marker + len(prefix):] if marker >= 0 else path.split("/", 3)[-1] or path
    try:
        arguments = json.dumps(json.loads(request.body), ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        arguments = repr(request.body[:300])
    last = task.last_attempt
    # Still queued after an attempt: that attempt's response is why it waits again.
    response = last.response_status.message if task.dispatch_count else ""
    retries = headers.get("x-celery-retries", "")
    return TaskView(
        queue_id=queue_id, task_id=_short(task.name), celery_id=headers.get("x-celery-task-id"),
        name=name, arguments=arguments[:300] + ("…" if len(arguments) > 300 else ""),
        eta=_time(task.schedule_time), attempts=task.dispatch_count,
        in_flight=task.dispatch_count > task.response_count,
        last_response=response, retry_reason=response, url=request.url, raw=task,
        retries=int(retries) if retries.isascii() and retries.isdigit() else 0)


def _job(job: Any) -> JobView:
    target = job.http_target.uri if job.http_target.uri else "(not an HTTP target)"
    status = job.status.message or ("OK" if _time(job.last_attempt_time) else "")
    return JobView(_short(job.name), job.schedule, job.time_zone or "UTC", job.state.name,
                   _time(job.schedule_time), _time(job.last_attempt_time), status, target)
