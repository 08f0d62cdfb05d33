"""celery_gcp: keep your Celery code, drop the broker.

``from celery_gcp import Celery`` instead of ``from celery import Celery``; tasks become typed
FastAPI endpoints that Google Cloud Tasks (and Cloud Scheduler) call over HTTP.
"""

from ._state import current_app, get_current_app
from .app import Celery
from .canvas import Signature, chain, group, signature
from .result import AsyncResult, EagerResult
from .shared import shared_task
from .task import Task

__all__ = [
    "AsyncResult",
    "Celery",
    "EagerResult",
    "Signature",
    "Task",
    "chain",
    "current_app",
    "get_current_app",
    "group",
    "shared_task",
    "signature",
]

__version__ = "0.1.0"
