"""The Celery features ``celery-gcp migrate`` reports, one entry per feature: plain data.

Each entry says how the tool finds a use (``kind`` and ``match``), the migration guide's status
for it, the guide section that explains it and what to do instead. The guide's "Feature index"
is rendered from this table (``python -m celery_gcp.migrate.features --write-guide``) and a
test fails when the two differ, so the tool and the guide say the same thing.

Kinds of ``match``:

- ``name``: a dotted Celery name (``celery.chord``, ``celery.signals.worker_ready``); a use of
  it, or of anything inside it, by any import form (also after migration, as ``celery_gcp.``);
- ``attribute``: an attribute chain read on the app (``control.revoke`` in
  ``app.control.revoke(...)``), on ``self`` (``self.replace``) or on anything (``.revoke()``);
- ``keyword``: a keyword argument of a call of one of ``calls`` (``@app.task(soft_time_limit=)``);
- ``setting``: a setting name, lower case, however it is set (a settings module or object,
  ``app.conf.x = ``, ``app.conf.update(x=)``, ``CELERY_X`` under a namespace, an old name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FEATURES", "OLD_NAME", "Feature", "Kind", "Status"]

Kind = Literal["name", "attribute", "keyword", "setting"]
Status = Literal["as-is", "differs", "no"]
#: Where an ``attribute`` entry is read: on the Celery app, on ``self`` in a task, or anywhere.
On = Literal["app", "self", "any"]


@dataclass(frozen=True)
class Feature:
    """One Celery feature: how a use is found, its status and what to do instead."""

    title: str
    kind: Kind
    match: tuple[str, ...]
    status: Status
    anchor: str
    instead: str
    #: ``keyword`` entries: the calls whose keyword it is (the callee's last name).
    calls: tuple[str, ...] = ()
    #: ``attribute`` entries: what the attribute is read on.
    on: On = "any"


_TASK = ("task", "shared_task")
_CALL = ("apply_async", "signature", "s", "si", "set", "retry")

#: Old upper-case setting names (``CELERY_ALWAYS_EAGER``): information, not something to fix.
OLD_NAME = Feature(
    "Old upper-case setting names (`CELERY_ALWAYS_EAGER`, `BROKER_URL`, ...)", "setting", (),
    "as-is", "app-and-configuration",
    "nothing to do: read under its new name; do not mix old and new names in one app")

FEATURES: tuple[Feature, ...] = (
    OLD_NAME,
    # App and configuration
    Feature("`broker_url`, `broker=`", "setting", ("broker_url",), "differs",
            "app-and-configuration",
            "remove it: tasks go to Cloud Tasks (set gcp_project, gcp_location, task_base_url); "
            "a Redis or AMQP URL is ignored with a warning, memory:// records messages in tests"),
    Feature("Broker connection settings (`broker_transport_options`, `broker_pool_limit`, ...)",
            "setting", ("broker_transport_options", "broker_connection_retry",
                        "broker_connection_retry_on_startup", "broker_connection_max_retries",
                        "broker_connection_timeout", "broker_heartbeat", "broker_pool_limit",
                        "broker_login_method", "broker_failover_strategy"), "differs",
            "app-and-configuration",
            "remove it: accepted but has no effect (there is no broker); queue settings live "
            "in gcp_queues, applied by celery-gcp queues sync"),
    Feature("`result_backend`, `backend=`", "setting", ("result_backend",),
            "differs", "results",
            "redis://, rediss:// and db+<dialect>:// work; RPC, cache, S3 and "
            "django-celery-results do not: use Redis or a database"),
    Feature("`enable_utc=False`", "setting", ("enable_utc",), "differs",
            "app-and-configuration",
            "set timezone: with none set, naive times are read as UTC, not local time"),
    Feature("`app.control`, `app.events`, `app.amqp`, `app.pool`, `app.loader`, "
            "`app.connection_for_write()`, `app.producer_or_acquire()`", "attribute",
            ("control", "events", "amqp", "pool", "loader", "connection_for_write",
             "producer_or_acquire"), "no", "app-and-configuration",
            "there is no broker: see the guide for each (revoke with AsyncResult(id).revoke(), "
            "inspect with gcloud tasks or celery-gcp inspect)", on="app"),
    Feature("`app.Worker`, `app.Beat`, `app.worker_main()`, `app.start()`", "attribute",
            ("Worker", "Beat", "worker_main", "start"), "no", "workers-and-concurrency",
            "there is no worker process: serve app.router with FastAPI "
            "(celery-gcp -A proj worker)", on="app"),
    Feature("`app.signature()`, `app.GroupResult`", "attribute", ("signature", "GroupResult"),
            "no", "app-and-configuration",
            "use celery_gcp.signature and celery_gcp.result.GroupResult", on="app"),
    # Task decorator and options
    Feature("`soft_time_limit` / `task_soft_time_limit`, `SoftTimeLimitExceeded`", "keyword",
            ("soft_time_limit",), "no", "time-limits-and-rate-limits",
            "never raised: check the elapsed time in the task yourself",
            calls=_TASK + _CALL),
    Feature("`task_soft_time_limit`", "setting", ("task_soft_time_limit",), "no",
            "time-limits-and-rate-limits",
            "never raised: check the elapsed time in the task yourself"),
    Feature("`time_limit` / `task_time_limit`", "setting", ("task_time_limit",), "differs",
            "time-limits-and-rate-limits",
            "becomes the Cloud Tasks dispatch_deadline (15 s to 30 min); nothing is raised in "
            "the task, a late run is retried: keep tasks idempotent"),
    Feature("`time_limit=` on a task", "keyword", ("time_limit",), "differs",
            "time-limits-and-rate-limits",
            "becomes the Cloud Tasks dispatch_deadline (15 s to 30 min); nothing is raised in "
            "the task", calls=_TASK),
    Feature("`time_limit=` per call", "keyword", ("time_limit",), "no",
            "calling-tasks", "per-call time limits are ignored (with a warning): set "
                             "time_limit on the task", calls=_CALL),
    Feature("`acks_late` / `task_acks_late`", "setting", ("task_acks_late",), "differs",
            "task-decorator-and-options",
            "no effect: delivery is always late (Cloud Tasks redelivers until a 2xx answer)"),
    Feature("`acks_late=` on a task", "keyword", ("acks_late",), "differs",
            "task-decorator-and-options",
            "no effect: delivery is always late (Cloud Tasks redelivers until a 2xx answer)",
            calls=_TASK),
    Feature("`rate_limit` / `task_default_rate_limit`", "setting", ("task_default_rate_limit",),
            "differs", "time-limits-and-rate-limits",
            "per queue, not per task: give a rate-limited task its own queue"),
    Feature("`rate_limit=` on a task", "keyword", ("rate_limit",), "differs",
            "time-limits-and-rate-limits",
            "per queue, not per task: give a rate-limited task its own queue", calls=_TASK),
    Feature("`priority=`", "keyword", ("priority",), "no", "calling-tasks",
            "ignored with a warning (Cloud Tasks has no priorities): route urgent work to its "
            "own queue", calls=_TASK + _CALL),
    Feature("AMQP options (`exchange=`, `routing_key=`, ...)", "keyword",
            ("exchange", "exchange_type", "routing_key", "delivery_mode", "mandatory",
             "immediate", "reply_to", "compression"), "no", "calling-tasks",
            "ignored with a warning: use queue= to choose the queue", calls=_CALL),
    Feature("`shadow=`, `expiration=` per call", "keyword", ("shadow", "expiration"), "no",
            "calling-tasks", "ignored with a warning: the task name is the URL path; use "
                             "expires= for an expiry", calls=_CALL),
    Feature("`serializer=` on a task", "keyword", ("serializer",), "no",
            "task-decorator-and-options", "ignored: arguments are always sent as JSON",
            calls=_TASK),
    Feature("`trail=`, `send_events=`", "keyword", ("trail", "send_events"), "no",
            "task-decorator-and-options", "no effect: there is no event stream", calls=_TASK),
    Feature("`self.replace()`", "attribute", ("replace",), "differs",
            "task-decorator-and-options",
            "works as in Celery; the replacement is a new Cloud Tasks task named {id}-x{n}, and "
            "replacing with a group needs result_backend", on="self"),
    Feature("`self.add_to_chord()`", "attribute", ("add_to_chord",), "differs",
            "task-decorator-and-options",
            "works as in Celery for one task's signature (needs result_backend); a redelivered "
            "adder adds its member once", on="self"),
    Feature("`self.send_event()`", "attribute", ("send_event",), "no",
            "task-decorator-and-options", "there is no event stream", on="self"),
    # Serializers
    Feature("`task_serializer`, `result_serializer`, `accept_content`, ...", "setting",
            ("task_serializer", "result_serializer", "accept_content",
             "result_accept_content", "event_serializer"), "no", "serializers",
            "remove it: ignored, only JSON is used; annotate task parameters instead"),
    # Routing and queues
    Feature("`task_queues` (kombu `Queue` / `Exchange`)", "setting", ("task_queues",),
            "differs", "routing-and-queues",
            "each queue is a Cloud Tasks queue; routes naming exchange/routing_key are matched "
            "against its bindings; queue settings go in gcp_queues (celery-gcp queues sync)"),
    Feature("`task_create_missing_queues`, `task_default_exchange`, "
            "`task_default_routing_key`, `worker_direct`", "setting",
            ("task_create_missing_queues", "task_default_exchange",
             "task_default_exchange_type", "task_default_routing_key", "worker_direct"), "no",
            "routing-and-queues",
            "there is no broker: declare queue settings in gcp_queues (rate, concurrency, "
            "retries) and apply them with celery-gcp queues sync"),
    # Workers and concurrency
    Feature("`worker_concurrency`", "setting", ("worker_concurrency",), "differs",
            "workers-and-concurrency",
            "scale with Cloud Run instances and the queue's max_concurrent_dispatches; sync "
            "tasks run in threads"),
    Feature("`worker_prefetch_multiplier`, `worker_max_tasks_per_child`, "
            "`worker_max_memory_per_child`", "setting",
            ("worker_prefetch_multiplier", "worker_max_tasks_per_child",
             "worker_max_memory_per_child"), "no", "workers-and-concurrency",
            "remove it: Cloud Tasks pushes tasks and Cloud Run manages instances"),
    # Periodic tasks
    Feature("`beat_schedule`", "setting", ("beat_schedule",), "differs", "periodic-tasks-beat",
            "one Cloud Scheduler job per entry, made by celery-gcp -A proj beat sync "
            "(celery-gcp dev syncs it locally)"),
    Feature("`beat_scheduler`, `beat_schedule_filename`, `beat_max_loop_interval`", "setting",
            ("beat_scheduler", "beat_schedule_filename", "beat_max_loop_interval"), "no",
            "periodic-tasks-beat",
            "there is no beat process: Cloud Scheduler is the scheduler (celery-gcp beat sync)"),
    Feature("`solar(event, lat, lon)`", "name", ("celery.schedules.solar",), "no",
            "periodic-tasks-beat",
            "beat sync refuses it: use a crontab at an approximate local time"),
    # Canvas
    Feature("`chord`", "name", ("celery.chord", "celery.canvas.chord"), "differs", "canvas",
            "needs result_backend (without one: NoResultBackendError at the call)"),
    Feature("`group`", "name", ("celery.group", "celery.canvas.group"), "differs", "canvas",
            "one bulk send; if some members fail to send, PartialSendError lists them"),
    Feature("`chain`", "name", ("celery.chain", "celery.canvas.chain"), "differs", "canvas",
            "built from link callbacks: each step's signature must be plain JSON"),
    # Results, revoke, control
    Feature("`AsyncResult.revoke()`", "attribute", ("revoke",), "differs",
            "revoke-control-and-inspect",
            "deletes the Cloud Tasks task while it waits and, with a result store, makes "
            "workers skip its id; a running task cannot be stopped"),
    Feature("`app.control.revoke(id)`", "attribute", ("control.revoke",), "differs",
            "revoke-control-and-inspect",
            "app.control does not exist: use AsyncResult(id).revoke()", on="app"),
    # Signals
    Feature("Worker signals (`worker_ready`, `worker_process_init`, `celeryd_init`, ...)",
            "name", tuple(f"celery.signals.{name}" for name in (
                "worker_init", "worker_ready", "worker_process_init", "worker_process_shutdown",
                "worker_shutting_down", "worker_shutdown", "worker_before_create_process",
                "celeryd_init", "celeryd_after_setup", "heartbeat_sent")), "no", "signals",
            "never fires (there is no worker process): use FastAPI lifespan events"),
    Feature("`beat_init`, `beat_embedded_init`", "name",
            ("celery.signals.beat_init", "celery.signals.beat_embedded_init"), "no", "signals",
            "never fires: there is no beat process"),
    Feature("`setup_logging`, `after_setup_logger`, `after_setup_task_logger`", "name",
            ("celery.signals.setup_logging", "celery.signals.after_setup_logger",
             "celery.signals.after_setup_task_logger"), "as-is", "signals",
            "fired by celery-gcp worker's log setup; a setup_logging receiver replaces it"),
    Feature("`task_rejected`, `task_internal_error`", "name",
            ("celery.signals.task_rejected", "celery.signals.task_internal_error"), "no",
            "signals", "defined but never fired"),
    Feature("`task_revoked`", "name", ("celery.signals.task_revoked",), "differs", "signals",
            "fired for expired tasks, and revoked ones with a result store; never terminated"),
    Feature("Worker bootsteps (`celery.bootsteps`, `app.steps`)", "name", ("celery.bootsteps",),
            "no", "signals",
            "there is no worker process to extend: add a celery_gcp.layers.Layer to app.layers"),
    # Events, logging, security
    Feature("Task events (`worker_send_task_events`, `task_send_sent_event`)", "setting",
            ("worker_send_task_events", "task_send_sent_event"), "no", "events-and-monitoring",
            "there is no event bus: use signals, Cloud Logging and Cloud Monitoring"),
    Feature("Worker log setup (`worker_hijack_root_logger`, `worker_log_format`, ...)",
            "setting", ("worker_hijack_root_logger", "worker_log_format",
                        "worker_task_log_format"), "as-is", "logging",
            "celery-gcp worker sets up logging with them (JSON lines on Cloud Run)"),
    Feature("`worker_redirect_stdouts`, `worker_log_color`", "setting",
            ("worker_redirect_stdouts", "worker_log_color"), "no", "logging",
            "Cloud Run collects stdout and stderr: there is nothing to redirect"),
    Feature("Message signing (`security_key`, `security_certificate`, ...)", "setting",
            ("security_key", "security_certificate", "security_cert_store", "security_digest"),
            "no", "security",
            "there are no broker messages to sign: the worker verifies each caller's OIDC token"),
    Feature("`broker_use_ssl`", "setting", ("broker_use_ssl",), "no", "security",
            "there is no broker: HTTPS comes from Cloud Run"),
    # Exceptions, contrib
    Feature("`SoftTimeLimitExceeded`, `TimeLimitExceeded`", "name",
            ("celery.exceptions.SoftTimeLimitExceeded", "celery.exceptions.TimeLimitExceeded"),
            "differs", "exceptions-and-module-mirrors",
            "importable, but never raised: check the elapsed time in the task yourself"),
    Feature("`celery.contrib` (`abortable`, `rdb`, `migrate`, `sphinx`)", "name",
            ("celery.contrib.abortable", "celery.contrib.rdb", "celery.contrib.migrate",
             "celery.contrib.sphinx"), "no", "exceptions-and-module-mirrors",
            "not provided: see the guide for what to use instead"),
    Feature("Celery's pytest plugin (`celery.contrib.pytest`)", "name",
            ("celery.contrib.pytest",), "differs", "pytest-plugin",
            "celery_gcp.contrib.pytest has Celery's fixtures; celery_worker serves the app over "
            "HTTP behind the embedded emulator"),
    Feature("`celery.contrib.testing` (`start_worker`, `TestApp`)", "name",
            ("celery.contrib.testing",), "differs", "pytest-plugin",
            "celery_gcp.contrib.testing: start_worker serves the app behind the embedded "
            "emulator"),
    Feature("`DjangoTask`, `delay_on_commit()`, `apply_async_on_commit()` "
            "(`celery.contrib.django`)", "name", ("celery.contrib.django",), "as-is", "django",
            "nothing to do: the Django fixup makes DjangoTask the default task class"),
)


def main(argv: list[str] | None = None) -> int:
    """``python -m celery_gcp.migrate.features [--write-guide]``: print the guide's feature
    index as rendered from the table, or write it into migration_guide/README.md."""
    import sys

    from .guide import GUIDE, render_index, write_guide

    args = sys.argv[1:] if argv is None else argv
    if args == ["--write-guide"]:
        write_guide(GUIDE)
        print(f"wrote the feature index into {GUIDE}")
        return 0
    if args:
        print("usage: python -m celery_gcp.migrate.features [--write-guide]", file=sys.stderr)
        return 2
    print(render_index(FEATURES), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
