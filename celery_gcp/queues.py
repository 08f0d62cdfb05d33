"""Queue configuration as code: the Cloud Tasks queues an app needs, and the diff to apply.

Each Celery queue the app's tasks are routed to is a Cloud Tasks queue. Its settings come from
``gcp_queues`` (per Celery queue name) and from the ``rate_limit`` of the tasks routed to it::

    app.conf.gcp_queues = {
        "emails": {"max_dispatches_per_second": 10, "max_concurrent_dispatches": 5,
                   "max_attempts": 10, "min_backoff": 1, "max_backoff": 300},
    }

    @app.task(rate_limit="100/m", queue="reports")     # reports: 1.67 dispatches/s
    def build_report(...): ...

``celery-gcp queues plan`` shows what would change; ``queues sync`` applies it (create, or
update_queue with a field mask: only the fields that differ).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["Change", "QueueSpec", "apply", "desired", "parse_rate", "plan", "queue_names"]

# Setting name -> (field path in the Queue message, kind).
FIELDS: dict[str, tuple[str, str]] = {
    "max_dispatches_per_second": ("rate_limits.max_dispatches_per_second", "float"),
    "max_concurrent_dispatches": ("rate_limits.max_concurrent_dispatches", "int"),
    "max_attempts": ("retry_config.max_attempts", "int"),
    "max_retry_duration": ("retry_config.max_retry_duration", "duration"),
    "min_backoff": ("retry_config.min_backoff", "duration"),
    "max_backoff": ("retry_config.max_backoff", "duration"),
    "max_doublings": ("retry_config.max_doublings", "int"),
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*([smh]))?\s*\Z")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(value: str | float) -> float:
    """Celery's rate limit (``"10/s"``, ``"100/m"``, ``"1000/h"``, or a number per second).

    >>> parse_rate("120/m")
    2.0
    """
    if isinstance(value, int | float):
        return float(value)
    match = _RATE.match(value)
    if not match:
        raise ImproperlyConfigured(f"rate_limit {value!r}: use N/s, N/m or N/h (e.g. '10/s')")
    return float(match.group(1)) / _PER[match.group(2) or "s"]


@dataclass
class QueueSpec:
    """What one queue should look like: its Celery name, Cloud Tasks path and settings."""

    name: str
    path: str
    settings: dict[str, float] = field(default_factory=dict)


@dataclass
class Change:
    """One queue's difference: ``create``, ``update`` (with the fields) or ``keep``."""

    spec: QueueSpec
    action: str
    fields: list[tuple[str, Any, Any]] = field(default_factory=list)

    def describe(self) -> str:
        """A readable line (and one per field)."""
        head = f"{self.action:<6} {self.spec.path}  (celery queue {self.spec.name!r})"
        rows = [f"         {name}: {old!r} -> {new!r}" for name, old, new in self.fields]
        return "\n".join([head, *rows])


def queue_names(app: Celery) -> list[str]:
    """Every Celery queue the app's tasks can be routed to (or that gcp_queues or
    task_queues names)."""
    names = {app.conf.task_default_queue, *(app.conf.get("gcp_queues") or {}),
             *app.queue_router.bindings.names}
    for name, task in app.tasks.items():
        options = {"queue": task.queue} if task.queue else {}
        names.add(app.queue_router.route(name, (), {}, options, task))
    routes = app.conf.task_routes
    for table in routes if isinstance(routes, list | tuple) else [routes]:
        if isinstance(table, dict):
            for value in table.values():
                queue = value.get("queue") if isinstance(value, dict) else value
                queue = getattr(queue, "name", queue)  # a Queue (celery_gcp.kombu)
                if isinstance(queue, str):
                    names.add(queue)
    return sorted(names)


def desired(app: Celery, queue_path: Any) -> list[QueueSpec]:
    """The queues the app needs, with their settings; ``queue_path(name)`` gives the path."""
    configured: dict[str, dict[str, Any]] = app.conf.get("gcp_queues") or {}
    rates: dict[str, dict[str, float]] = {}
    for name, task in app.tasks.items():
        limit = task.rate_limit or app.conf.task_default_rate_limit
        if limit:
            options = {"queue": task.queue} if task.queue else {}
            queue = app.queue_router.route(name, (), {}, options, task)
            rates.setdefault(queue, {})[name] = parse_rate(limit)
    specs = []
    for name in queue_names(app):
        settings: dict[str, float] = {}
        for key, value in (configured.get(name) or {}).items():
            if key == "rate_limit":
                key, value = "max_dispatches_per_second", parse_rate(value)
            if key not in FIELDS:
                raise ImproperlyConfigured(
                    f"gcp_queues[{name!r}]: unknown setting {key!r}; use one of "
                    f"{', '.join(['rate_limit', *FIELDS])}")
            settings[key] = value
        task_rates = rates.get(name, {})
        if len(set(task_rates.values())) > 1:
            raise ImproperlyConfigured(
                f"tasks on queue {name!r} have different rate limits {task_rates}: Cloud Tasks "
                "limits a whole queue, so route each rate-limited task to its own queue")
        if task_rates and "max_dispatches_per_second" not in settings:
            settings["max_dispatches_per_second"] = next(iter(task_rates.values()))
        specs.append(QueueSpec(name, queue_path(name), settings))
    return specs


def _current(queue: Any, key: str) -> Any:
    path, kind = FIELDS[key]
    value: Any = queue
    for part in path.split("."):
        value = getattr(value, part)
    if kind == "duration":
        return value.total_seconds() if hasattr(value, "total_seconds") else float(
            value.seconds + value.nanos / 1e9)
    return value


def plan(specs: list[QueueSpec], get_queue: Any) -> list[Change]:
    """Compare each spec with the queue that exists (``get_queue(path)`` -> queue or None)."""
    changes = []
    for spec in specs:
        queue = get_queue(spec.path)
        if queue is None:
            changes.append(Change(spec, "create", [(k, None, v) for k, v in spec.settings.items()]))
            continue
        diffs = [(key, _current(queue, key), value) for key, value in spec.settings.items()
                 if float(_current(queue, key)) != float(value)]
        changes.append(Change(spec, "update" if diffs else "keep", diffs))
    return changes


def queue_message(spec: QueueSpec, keys: list[str] | None = None) -> dict[str, Any]:
    """The Queue (as a dict for the client) carrying ``keys`` of the spec's settings."""
    queue: dict[str, Any] = {"name": spec.path}
    for key in keys if keys is not None else list(spec.settings):
        path, kind = FIELDS[key]
        group, leaf = path.split(".")
        value: Any = spec.settings[key]
        if kind == "duration":
            value = {"seconds": int(value), "nanos": round((value % 1) * 1e9)}
        elif kind == "int":
            value = int(value)
        queue.setdefault(group, {})[leaf] = value
    return queue


def apply(changes: list[Change], client: Any) -> None:
    """Create missing queues and update changed fields (update_queue with a field mask)."""
    from google.api_core import exceptions
    from google.protobuf import field_mask_pb2

    for change in changes:
        if change.action == "create":
            parent = change.spec.path.rsplit("/queues/", 1)[0]
            try:
                client.create_queue(parent=parent, queue=queue_message(change.spec))
                continue
            except exceptions.AlreadyExists:
                pass  # created meanwhile by another sync: update it instead
        if change.action in ("update", "create") and change.spec.settings:
            keys = [name for name, _, _ in change.fields] or list(change.spec.settings)
            mask = field_mask_pb2.FieldMask(paths=[FIELDS[k][0] for k in keys])
            client.update_queue(queue=queue_message(change.spec, keys), update_mask=mask)
