"""The Celery app: ``celery -A examples.celery_project.celery_app worker``."""

from celery import Celery

app = Celery("celery_project", include=["examples.celery_project.tasks"])
app.config_from_object("examples.celery_project.celeryconfig")
