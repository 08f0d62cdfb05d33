"""The Celery features celery_gcp leaves out on purpose, and the errors that say so.

One table, :data:`ABSENT`, read by the app (``app.control``), the package
(``from celery_gcp import bugreport``) and the stand-in modules
(``celery_gcp.contrib.abortable``, ``celery_gcp.bin``): each use raises a
:class:`~celery_gcp.exceptions.NotSupportedError` naming what to do instead and the section
of migration_guide/README.md that covers it. ``celery-gcp migrate`` can read the same table.
A name Celery never had stays a plain ``AttributeError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .exceptions import NotSupportedAttributeError, NotSupportedImportError

__all__ = [
    "ABSENT", "GUIDE", "Absent", "absent", "attribute_error", "name_error", "refuse_import",
]

GUIDE = "migration_guide/README.md"


@dataclass(frozen=True, slots=True)
class Absent:
    """One left-out feature: its Celery name (``app.<attr>`` for an app attribute, else the
    dotted name in Celery), the guide's heading anchor and what to do instead."""

    celery_name: str
    section: str
    instead: str

    def message(self) -> str:
        """The error's text: what is absent, what to do instead, where the guide says more."""
        return (f"{self.celery_name} is not supported by celery_gcp: {self.instead} "
                f"(see {GUIDE}#{self.section})")


_NO_BROKER = ("there is no broker connection or producer: send with .delay() / apply_async() "
              "(they go to Cloud Tasks through app.transport)")
_NO_WORKER = ("there is no worker process: serve app.router in your FastAPI app, or run "
              "celery-gcp -A proj worker")

_ROWS: tuple[tuple[str, str, str], ...] = (
    ("app.control", "revoke-control-and-inspect",
     "there is no broker to broadcast on: revoke with AsyncResult.revoke(), list tasks with "
     "celery-gcp -A proj inspect registered or gcloud tasks list"),
    ("app.events", "events-and-monitoring",
     "there is no event bus: use signals, Cloud Logging and Cloud Monitoring"),
    ("app.amqp", "app-and-configuration", _NO_BROKER),
    ("app.pool", "app-and-configuration", _NO_BROKER),
    ("app.connection", "app-and-configuration", _NO_BROKER),
    ("app.connection_for_read", "app-and-configuration", _NO_BROKER),
    ("app.connection_for_write", "app-and-configuration", _NO_BROKER),
    ("app.broker_connection", "app-and-configuration", _NO_BROKER),
    ("app.default_connection", "app-and-configuration", _NO_BROKER),
    ("app.producer_or_acquire", "app-and-configuration", _NO_BROKER),
    ("app.producer_pool", "app-and-configuration", _NO_BROKER),
    ("app.default_producer", "app-and-configuration", _NO_BROKER),
    ("app.loader", "app-and-configuration",
     "settings come from app.conf, config_from_object() and autodiscover_tasks()"),
    ("app.Worker", "workers-and-concurrency", _NO_WORKER),
    ("app.WorkController", "workers-and-concurrency", _NO_WORKER),
    ("app.worker_main", "workers-and-concurrency", _NO_WORKER),
    ("app.start", "workers-and-concurrency",
     "the command is celery-gcp (celery-gcp -A proj worker, dev, beat sync, ...)"),
    ("app.Beat", "periodic-tasks-beat",
     "beat_schedule runs on Cloud Scheduler: celery-gcp -A proj beat sync"),
    ("app.setup_security", "security",
     "there are no broker messages to sign: callers are verified by OIDC (task_auth)"),
    ("app.signature", "app-and-configuration", "use celery_gcp.signature"),
    ("app.GroupResult", "app-and-configuration", "use celery_gcp.result.GroupResult"),
    ("app.log", "logging", "celery_gcp sets up no logging: configure it in your app"),
    ("celery.bugreport", "workers-and-concurrency",
     "report celery_gcp.__version__ and your Python and package versions"),
    ("celery.maybe_patch_concurrency", "workers-and-concurrency",
     "there are no worker pools to patch: tasks run in the ASGI server's threads"),
    ("celery.contrib.abortable", "revoke-control-and-inspect",
     "a running task cannot be aborted: revoke a waiting one with AsyncResult.revoke(), or "
     "have the task check a flag of your own (a database row)"),
    ("celery.contrib.rdb", "workers-and-concurrency",
     "run the worker under your debugger locally (celery-gcp -A proj dev)"),
    ("celery.contrib.migrate", "revoke-control-and-inspect",
     "there are no broker queues to move tasks between: drain the old broker first"),
    ("celery.bin", "workers-and-concurrency",
     "the command is celery-gcp (celery_gcp.cli)"),
    ("celery.bootsteps", "workers-and-concurrency",
     "there is no worker to extend: use FastAPI lifespan, middleware or a Layer"),
)

#: Celery name -> :class:`Absent`, for the code and for ``celery-gcp migrate``.
ABSENT: dict[str, Absent] = {name: Absent(name, section, instead)
                             for name, section, instead in _ROWS}


def absent(celery_name: str) -> Absent | None:
    """The table's row for a Celery name (``"app.control"``, ``"celery.contrib.abortable"``)."""
    return ABSENT.get(celery_name)


def attribute_error(owner: str, key: str, name: str) -> AttributeError:
    """The error for a missing attribute ``name`` of ``owner`` (shown in a plain error):
    :class:`NotSupportedAttributeError` when ``key`` is in the table, else a plain one."""
    row = ABSENT.get(key)
    if row is None:
        return AttributeError(f"{owner} has no attribute {name!r}")
    return NotSupportedAttributeError(row.message(), name=name)


def name_error(module: str, name: str) -> Exception:
    """The error for ``from celery_gcp import name`` of a name the package lacks: for a
    Celery name in the table a :class:`NotSupportedImportError` (the import statement turns
    an ``AttributeError`` into a bare "cannot import name", losing the message), else a plain
    ``AttributeError``."""
    row = ABSENT.get(f"celery.{name}")
    if row is None:
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    return NotSupportedImportError(row.message(), name=module)


def refuse_import(module: str) -> None:
    """Raise for an absent module: the stand-in ``celery_gcp.X`` of Celery's ``celery.X``."""
    celery_name = "celery" + module.removeprefix("celery_gcp")
    raise NotSupportedImportError(ABSENT[celery_name].message(), name=module)
