"""Periodic tasks as a Celery project writes them: ``beat_schedule`` and ``add_periodic_task``.

On Google Cloud each entry is a Cloud Scheduler job (``celery-gcp -A ... beat sync``). Locally,
``dev`` syncs them into its emulator; this demo fires each job once, as "Force run" does:

    celery-gcp -A examples.periodic.tasks dev \
        --run examples.periodic.tasks:demo --exit-when-idle
"""

from __future__ import annotations

from typing import Any

from celery_gcp import Celery, beat
from celery_gcp.schedules import crontab

app = Celery("periodic")
app.conf.update(
    timezone="Europe/Paris",
    beat_schedule={
        # Weekdays at 07:00, Paris time, across daylight saving changes.
        "morning-report": {
            "task": "examples.periodic.tasks.report",
            "schedule": crontab(minute=0, hour=7, day_of_week="mon-fri"),
            "args": ("daily",),
        },
    },
)


@app.on_after_configure.connect
def setup_periodic_tasks(sender: Celery, **kwargs: Any) -> None:
    """Celery's other way to declare a periodic task."""
    sender.add_periodic_task(crontab(minute="*/15"), cleanup.s(), name="cleanup")


@app.task
def report(kind: str) -> str:
    """Build a report."""
    return f"{kind} report sent"


@app.task
def cleanup() -> int:
    """Delete expired rows; returns how many."""
    return 0


def demo() -> None:
    """Fire every periodic task's job once, now."""
    for name in app.conf.beat_schedule:
        beat.run(app, name)
