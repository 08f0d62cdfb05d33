"""Periodic tasks on Cloud Scheduler: one job per ``beat_schedule`` entry, and the beat endpoint.

Each entry becomes a Cloud Scheduler job in the app's time zone that POSTs (OIDC-signed, as a
task is) to ``{task_endpoint_prefix}/beat/{entry id}``. The endpoint does what Celery's beat
does at that moment, ``apply_async(args, kwargs, **options)`` for the entry, with the task named
from the job and ``X-CloudScheduler-ScheduleTime``: a retried fire enqueues nothing twice::

    app.conf.beat_schedule = {
        "nightly-report": {"task": "proj.report", "schedule": crontab(minute=0, hour=2),
                           "args": (7,), "options": {"queue": "reports"}},
        "poll": {"task": "proj.poll", "schedule": 30.0},  # 2 tasks a minute, :00 and :30
        "paused": {"task": "proj.cleanup", "schedule": 3600, "enabled": False},
    }

Besides Celery's keys (``task``, ``schedule``, ``args``, ``kwargs``, ``options``, ``relative``),
an entry may set ``enabled`` (False: the job exists, paused), ``sub_minute`` (accepted, no
effect: any whole-second interval runs, see :mod:`celery_gcp.intervals`) and ``job`` (Cloud
Scheduler settings, over
``beat_job_defaults``): ``retry_count`` (0..5, default 3: a fire only enqueues, so retrying it
is safe), ``attempt_deadline`` (15..1800 s, default 180), ``min_backoff``, ``max_backoff``,
``max_doublings``, ``max_retry_duration``.

``celery-gcp beat plan`` shows the difference with the jobs that exist, field by field;
``beat run NAME`` fires one now; ``beat sync [--prune]`` applies the plan: create_job,
update_job with a field mask, pause/resume, and with ``--prune`` delete_job for jobs this app
made whose entry is gone. Jobs are named ``{app}-{entry id}`` and their description starts
with ``celery-gcp {app}:``; a job without that mark is never changed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import gcp, intervals
from .beat_entries import JOB_SETTINGS as JOB_SETTINGS  # deploy.py reads it here
from .beat_entries import Entry, entries, entry_id, resolve
from .exceptions import ScheduleError

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["Entry", "Fired", "JobChange", "apply", "desired_job", "entries", "entry_id",
           "entry_url", "fire", "http_job", "job_mark", "parent", "plan", "resolve", "run",
           "sync", "time_zone"]

logger = logging.getLogger("celery_gcp.beat")

# Fields compared by plan, in the order shown.
_COMPARED = ("schedule", "time_zone", "description", "http_target.uri",
             "http_target.http_method", "http_target.headers",
             "http_target.oidc_token.service_account_email", "http_target.oidc_token.audience",
             *(path for path, *_ in JOB_SETTINGS.values()), "state")


# -- jobs ------------------------------------------------------------------------------------


def parent(app: Celery) -> str:
    """``projects/P/locations/L`` of the app's jobs."""
    location = app.conf.get("gcp_scheduler_location") or app.conf.gcp_location
    return f"projects/{gcp.project(app, gcp.SCHEDULER_VARIABLE)}/locations/{location}"


def _prefix(app: Celery) -> str:
    return entry_id(app.main or "celery")


def job_mark(app: Celery) -> str:
    """How the description of every job this app made begins."""
    return f"celery-gcp {app.main or 'celery'}:"


def time_zone(app: Celery) -> str:
    """The jobs' time zone: the app's ``timezone``, else UTC."""
    return str(app.conf.timezone or "Etc/UTC")


def entry_url(app: Celery, entry: Entry) -> str:
    """The URL Cloud Scheduler calls for ``entry``."""
    return gcp.endpoint_url(app, f"beat/{entry.id}")


def http_job(name: str, schedule: str, zone: str, uri: str, *, description: str = "",
             method: str = "POST", headers: Mapping[str, str] | None = None, body: bytes = b"",
             service_account: str | None = None, audience: str | None = None) -> Any:
    """A Cloud Scheduler job (raw protobuf) that calls ``uri``: the one job builder of beat
    entries and of the scheduled routes of :mod:`celery_gcp.fastapi`. With a
    ``service_account`` each call carries its OIDC token for ``audience`` (default: ``uri``).
    """
    from google.cloud import scheduler_v1

    job = scheduler_v1.Job.pb()(name=name, schedule=schedule, time_zone=zone,
                                description=description)
    target = job.http_target
    target.uri = uri
    target.http_method = getattr(scheduler_v1.HttpMethod, method)
    for key, value in (headers or {}).items():
        target.headers[key] = value
    target.body = body
    if service_account:
        target.oidc_token.service_account_email = service_account
        target.oidc_token.audience = audience or uri
    return job


def desired_job(app: Celery, entry: Entry, where: str) -> Any:
    """The Job (raw protobuf) for ``entry`` under ``where`` (``projects/P/locations/L``)."""
    from google.cloud import scheduler_v1

    job = http_job(f"{where}/jobs/{_prefix(app)}-{entry.id}", entry.spec.expression,
                   entry.spec.zone(time_zone(app)), entry_url(app, entry),
                   description=f"{job_mark(app)} {entry.name}"[:500],
                   service_account=app.conf.gcp_service_account,
                   audience=app.conf.task_oidc_audience)
    for key, (path, kind, *_) in JOB_SETTINGS.items():
        _write(job, path, kind, entry.job[key])
    job.state = (scheduler_v1.Job.State.ENABLED if entry.enabled
                 else scheduler_v1.Job.State.PAUSED)
    return job


def _write(job: Any, path: str, kind: str, value: float) -> None:
    *groups, leaf = path.split(".")
    target = job
    for group in groups:
        target = getattr(target, group)
    if kind == "duration":
        getattr(target, leaf).FromNanoseconds(round(value * 1e9))
    else:
        setattr(target, leaf, int(value))


def _read(job: Any, path: str) -> Any:
    value = job
    for part in path.split("."):
        value = getattr(value, part)
    if hasattr(value, "ToNanoseconds"):
        return value.ToNanoseconds() / 1e9
    if hasattr(value, "items"):
        return dict(value.items())
    return value


@dataclass
class JobChange:
    """One job's difference: ``create``, ``update`` (with the fields), ``keep`` or ``delete``."""

    action: str
    name: str
    entry: Entry | None = None
    job: Any = None  # the desired Job (raw protobuf); None for delete
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)

    def describe(self) -> str:
        """A readable line (and one per changed field)."""
        what = f"  (entry {self.entry.name!r})" if self.entry is not None else ""
        rows = [f"         {path}: {_show(path, old)} -> {_show(path, new)}"
                for path, old, new in self.fields]
        if self.entry is not None and self.job is not None:
            spec = self.entry.spec
            rows.insert(0, "         " + intervals.describe(
                spec.expression, self.job.time_zone, spec.every, spec.period))
        return "\n".join([f"{self.action:<6} {self.name}{what}", *rows])


def _show(path: str, value: Any) -> str:
    if path == "state" and isinstance(value, int):
        return "ENABLED" if value == 1 else "PAUSED" if value == 2 else str(value)
    if path == "http_target.http_method" and isinstance(value, int):
        return "POST" if value == 1 else str(value)
    return repr(value)


def plan(app: Celery, client: Any, *, prune: bool = False) -> list[JobChange]:
    """Compare the schedule in code with the jobs that exist; ``prune`` adds deletes of this
    app's jobs whose entry is gone."""
    where = parent(app)
    wanted = {job.name: (entry, job) for entry in entries(app).values()
              for job in [desired_job(app, entry, where)]}
    existing = {job.name: job for job in _list_jobs(client, where)}
    changes: list[JobChange] = []
    for name, (entry, job) in wanted.items():
        current = existing.get(name)
        if current is None:
            changes.append(JobChange("create", name, entry, job,
                                     [(p, None, _read(job, p)) for p in _COMPARED]))
            continue
        if not current.description.startswith(job_mark(app)):
            raise ScheduleError(
                f"job {name} exists but was not made by this app (its description does not "
                f"start with {job_mark(app)!r}): rename entry {entry.name!r} or delete the job")
        diffs = [(p, _read(current, p), _read(job, p)) for p in _COMPARED
                 if _read(current, p) != _read(job, p)]
        changes.append(JobChange("update" if diffs else "keep", name, entry, job, diffs))
    if prune:
        ours = f"{where}/jobs/{_prefix(app)}-"
        for name, job in existing.items():
            if name not in wanted and name.startswith(ours) and job.description.startswith(
                    job_mark(app)):
                changes.append(JobChange("delete", name))
    return changes


def _list_jobs(client: Any, where: str) -> list[Any]:
    from google.cloud import scheduler_v1

    return [scheduler_v1.Job.pb(job) for job in client.list_jobs(parent=where)]


def apply(changes: list[JobChange], client: Any) -> None:
    """Make the jobs as planned. Safe to run twice at once: a job created meanwhile is updated,
    one deleted meanwhile is skipped."""
    from google.api_core import exceptions
    from google.cloud import scheduler_v1
    from google.protobuf import field_mask_pb2

    for change in changes:
        if change.action == "delete":
            with contextlib.suppress(exceptions.NotFound):  # another sync deleted it
                client.delete_job(name=change.name)
            continue
        if change.action == "keep":
            continue
        body = scheduler_v1.Job.pb()()
        body.CopyFrom(change.job)
        body.ClearField("state")  # output only: set through pause_job / resume_job
        job = scheduler_v1.Job.wrap(body)
        paused = change.job.state == scheduler_v1.Job.State.PAUSED
        state_changed = any(path == "state" for path, _, _ in change.fields)
        if change.action == "create":
            if not put_job(client, change.name.rsplit("/jobs/", 1)[0], job)[0]:
                state_changed = True  # another sync made it: put_job brought it up to date
        else:
            paths = sorted({p.split(".")[0] for p, _, _ in change.fields} - {"state"})
            if paths:
                client.update_job(job=job, update_mask=field_mask_pb2.FieldMask(paths=paths))
        if paused and (change.action == "create" or state_changed):
            _set_state(client.pause_job, change.name)
        elif not paused and state_changed:
            _set_state(client.resume_job, change.name)


#: The fields a job is made of (all but its name and state): what an update in place sets.
JOB_FIELDS = ("schedule", "time_zone", "description", "http_target", "retry_config",
              "attempt_deadline")


def put_job(client: Any, parent: str, job: Any, **call: Any) -> tuple[bool, Any]:
    """Create ``job`` (a ``scheduler_v1.Job``) under ``parent``, or update the existing one in
    place (never deleted and re-created, so its run history stays); ``(created, job)``.
    Several callers at once converge: the last update wins, none fails."""
    from google.api_core import exceptions
    from google.protobuf import field_mask_pb2

    try:
        return True, client.create_job(parent=parent, job=job, **call)
    except exceptions.AlreadyExists:
        mask = field_mask_pb2.FieldMask(paths=list(JOB_FIELDS))
        return False, client.update_job(job=job, update_mask=mask, **call)


async def aput_job(client: Any, parent: str, job: Any, **call: Any) -> tuple[bool, Any]:
    """Async :func:`put_job` on a ``CloudSchedulerAsyncClient``."""
    from google.api_core import exceptions
    from google.protobuf import field_mask_pb2

    try:
        return True, await client.create_job(parent=parent, job=job, **call)
    except exceptions.AlreadyExists:
        mask = field_mask_pb2.FieldMask(paths=list(JOB_FIELDS))
        return False, await client.update_job(job=job, update_mask=mask, **call)


def _set_state(call: Any, name: str) -> None:
    from google.api_core import exceptions

    with contextlib.suppress(exceptions.FailedPrecondition):  # already so: another sync
        call(name=name)


def sync(app: Celery, client: Any | None = None, *, prune: bool = False) -> list[JobChange]:
    """Plan and apply in one step; returns the changes made."""
    client = client or gcp.scheduler_client()
    changes = plan(app, client, prune=prune)
    apply(changes, client)
    return changes


def run(app: Celery, name: str, client: Any | None = None) -> str:
    """Fire entry ``name``'s job now, as "Force run" in the Cloud Console does; returns the
    job's name."""
    entry = resolve(app, name, (app.conf.beat_schedule or {}).get(name))
    job = f"{parent(app)}/jobs/{_prefix(app)}-{entry.id}"
    (client or gcp.scheduler_client()).run_job(name=job)
    return job


# -- the beat endpoint -----------------------------------------------------------------------


@dataclass
class Fired:
    """What one call of the beat endpoint did."""

    entry: str
    task: str
    task_ids: list[str]
    schedule_time: datetime
    skipped: str | None = None


def fire(app: Celery, entry_key: str, job_name: str | None,
         schedule_time: datetime | None) -> Fired:
    """Send the task of entry ``entry_key`` for one fire of its job (the beat endpoint's work).

    Raises ``KeyError`` for an unknown entry, :class:`ScheduleError` for one that cannot run,
    and :class:`TransportError` when the task could not be sent (the fire is retried).
    """
    from .canvas import group

    raw = {entry_id(str(n)): (str(n), e) for n, e in (app.conf.beat_schedule or {}).items()}
    if entry_key not in raw:
        raise KeyError(entry_key)
    entry = resolve(app, *raw[entry_key])
    when = (schedule_time or app.now()).astimezone(UTC).replace(microsecond=0)
    fired = Fired(entry.name, entry.task, [], when)
    local_day = when.astimezone(app.timezone).date()
    if entry.spec.check_day and not entry.schedule.runs_on(local_day):
        fired.skipped = (f"{local_day} is not a run day: Celery's crontab needs both "
                         "day_of_month and day_of_week to match")
        return fired
    # Each run is named from its instant, so a fire sent twice (or two fires whose periods
    # overlap, as a forced run's does) sends no run twice.
    base = job_name or f"beat-{entry.id}"
    task = app.tasks[entry.task]
    options = {**entry.options, "on_duplicate": "ignore"}
    if not entry.spec.every:
        fired.task_ids = [f"{base}-{int(when.timestamp())}"]
        task.apply_async(entry.args, entry.kwargs, task_id=fired.task_ids[0], **options)
        return fired
    runs = entry.spec.runs(when)
    if not runs:
        fired.skipped = (f"no run (every {entry.spec.every}s since the epoch) falls in the "
                         f"{entry.spec.period}s from this fire")
        return fired
    signatures = [task.s(*entry.args, **entry.kwargs).set(
        task_id=f"{base}-{int(at.timestamp())}", eta=at) for at in runs]
    fired.task_ids = [str(s.options["task_id"]) for s in signatures]
    group(signatures).apply_async(**options)
    return fired
