"""The entries of ``beat_schedule``, checked and resolved: their keys, task, arguments,
schedule and Cloud Scheduler job settings (see :mod:`celery_gcp.beat`, which makes a job of
each).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .exceptions import ImproperlyConfigured, ScheduleError
from .schedules import BaseSchedule, CronSpec, maybe_schedule

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["JOB_SETTINGS", "Entry", "entries", "entry_id", "resolve"]

# Job setting -> (field path in the Job message, kind, default, lowest, highest).
JOB_SETTINGS: dict[str, tuple[str, str, float, float, float | None]] = {
    "retry_count": ("retry_config.retry_count", "int", 3, 0, 5),
    "max_retry_duration": ("retry_config.max_retry_duration", "duration", 0, 0, None),
    "min_backoff": ("retry_config.min_backoff_duration", "duration", 5, 0, 3600),
    "max_backoff": ("retry_config.max_backoff_duration", "duration", 3600, 0, 3600),
    "max_doublings": ("retry_config.max_doublings", "int", 5, 1, 16),
    "attempt_deadline": ("attempt_deadline", "duration", 180, 15, 1800),
}
_ENTRY_KEYS = frozenset({"task", "schedule", "args", "kwargs", "options", "relative",
                         "enabled", "sub_minute", "job"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Entry:
    """One ``beat_schedule`` entry, checked and resolved."""

    name: str
    id: str  # safe in a job id and a URL
    task: str
    schedule: BaseSchedule
    spec: CronSpec
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    enabled: bool
    job: dict[str, float]


def entry_id(name: str) -> str:
    """The job-id-safe form of an entry name (a hash is added where characters changed)."""
    safe = _UNSAFE.sub("-", name)[:100]
    if safe != name:
        safe += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return safe


def entries(app: Celery) -> dict[str, Entry]:
    """Every entry of ``beat_schedule``, by id; raises :class:`ScheduleError` listing each
    entry that cannot run on Cloud Scheduler and why."""
    found: dict[str, Entry] = {}
    problems: list[str] = []
    for name, raw in (app.conf.beat_schedule or {}).items():
        try:
            entry = resolve(app, str(name), raw)
        except (ScheduleError, ImproperlyConfigured, ValueError, TypeError) as exc:
            problems.append(f"beat_schedule[{name!r}]: {exc}")
            continue
        if entry.id in found:
            problems.append(f"beat_schedule[{name!r}]: its job id {entry.id!r} is also "
                            f"the id of {found[entry.id].name!r}; rename one of them")
            continue
        found[entry.id] = entry
    if problems:
        raise ScheduleError("\n".join(problems))
    return found


def resolve(app: Celery, name: str, raw: Any) -> Entry:
    """Check one entry: its keys, task, arguments, schedule and job settings."""
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"an entry is a dict with 'task' and 'schedule', got {raw!r}")
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise ImproperlyConfigured(
            f"unknown keys {sorted(unknown)}; an entry has {', '.join(sorted(_ENTRY_KEYS))}")
    task = raw.get("task")
    if not isinstance(task, str) or task not in app.tasks:
        raise ImproperlyConfigured(
            f"task {task!r} is not registered in this app: import the module that defines it "
            "(imports= / include= / autodiscover_tasks) or fix the name")
    args, kwargs = tuple(raw.get("args") or ()), dict(raw.get("kwargs") or {})
    try:
        json.dumps([args, kwargs, raw.get("options") or {}])
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"args, kwargs and options must be plain JSON (they are sent at each fire): {exc}"
        ) from None
    app.tasks[task].arguments.encode(args, kwargs)  # the call the worker would reject fails now
    schedule = maybe_schedule(raw["schedule"], bool(raw.get("relative", False)), app=app) \
        if "schedule" in raw else None
    if schedule is None:
        raise ImproperlyConfigured("no 'schedule': give a crontab, a schedule or seconds")
    spec = schedule.cron()
    job = _job_settings({**(app.conf.get("beat_job_defaults") or {}), **(raw.get("job") or {})})
    return Entry(name, entry_id(name), task, schedule, spec, args, kwargs,
                 dict(raw.get("options") or {}), bool(raw.get("enabled", True)), job)


def _job_settings(given: Mapping[str, Any]) -> dict[str, float]:
    settings: dict[str, float] = {}
    for key, (_, _, default, low, high) in JOB_SETTINGS.items():
        value = given.get(key, default)
        if isinstance(value, timedelta):
            value = value.total_seconds()
        if not isinstance(value, int | float) or isinstance(value, bool) or value < low or (
                high is not None and value > high):
            top = "" if high is None else f"..{high:g}"
            raise ImproperlyConfigured(
                f"job setting {key}={value!r} is outside Cloud Scheduler's range {low:g}{top}")
        settings[key] = float(value)
    unknown = set(given) - set(JOB_SETTINGS)
    if unknown:
        raise ImproperlyConfigured(
            f"unknown job settings {sorted(unknown)}; use {', '.join(JOB_SETTINGS)}")
    if settings["min_backoff"] > settings["max_backoff"]:
        raise ImproperlyConfigured("job setting min_backoff must not exceed max_backoff")
    return settings
