"""Celery settings, read with ``app.config_from_object("...celeryconfig")``."""

import os

from celery.schedules import crontab

broker_url = os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0")
result_backend = os.environ.get("CELERY_RESULT_BACKEND", "redis://localhost:6379/1")
task_default_queue = "default"
timezone = "Europe/Paris"

beat_schedule = {
    # Every weekday morning, before the office opens.
    "morning-report": {
        "task": "examples.celery_project.tasks.build_report",
        "schedule": crontab(minute=0, hour=7, day_of_week="mon-fri"),
        "args": ("daily",),
    },
    "nightly-cleanup": {
        "task": "examples.celery_project.tasks.cleanup",
        "schedule": crontab(minute=30, hour=2),
    },
}
