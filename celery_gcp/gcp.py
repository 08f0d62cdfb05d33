"""The Google Cloud clients and project: the emulator where its variable is set, else
Application Default Credentials. Client libraries are imported on first use (cold start)."""

from __future__ import annotations

import os
import urllib.parse
from typing import TYPE_CHECKING, Any

from .exceptions import ImproperlyConfigured, TransportError
from .platform import SCHEDULER_VARIABLE, TASKS_VARIABLE

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["SCHEDULER_VARIABLE", "TASKS_VARIABLE", "base_url", "endpoint_url",
           "is_client_factory", "project", "queue_path", "routed_path", "scheduler_client",
           "tasks_client"]



def project(app: Celery, variable: str = TASKS_VARIABLE) -> str:
    """The app's project: ``gcp_project``, or ``local`` on the emulator."""
    value = app.conf.gcp_project
    if value:
        return str(value)
    if os.environ.get(variable):
        return "local"
    raise ImproperlyConfigured(
        "no Google Cloud project: set gcp_project (or GOOGLE_CLOUD_PROJECT), or set "
        f"{variable}=HOST:PORT to use the emulator"
    )


def queue_path(app: Celery, queue: str | None) -> str:
    """The full name of the Cloud Tasks queue of Celery queue ``queue`` (``None``: the
    app's ``task_default_queue``): ``projects/P/locations/L/queues/ID``."""
    conf = app.conf
    queue_id = app.queue_router.queue_id(queue or conf.task_default_queue)
    return f"projects/{project(app)}/locations/{conf.gcp_location}/queues/{queue_id}"


def base_url(app: Celery) -> str:
    """``task_base_url`` without a trailing ``/``: where the app's tasks and routes are
    served; raises :class:`ImproperlyConfigured` when it is not set."""
    base = app.conf.task_base_url
    if not base:
        raise ImproperlyConfigured(
            "task_base_url is not set: set it (or CELERY_GCP_TASK_BASE_URL) to the URL of the "
            "service that runs your tasks, e.g. https://worker-abc-uc.a.run.app")
    return str(base).rstrip("/")


def endpoint_url(app: Celery, name: str) -> str:
    """The URL of the app's endpoint ``{task_endpoint_prefix}/{name}`` at ``task_base_url``:
    what Cloud Tasks and Cloud Scheduler call."""
    return f"{base_url(app)}{app.conf.task_endpoint_prefix.rstrip('/')}/{name}"


def routed_path(url: str) -> str:
    """The path of ``url`` (or of a path with a query) as a worker routes it: without the
    query, percent-decoded. A token's audience is the base URL plus this."""
    return urllib.parse.unquote(url.split("?", 1)[0])


def tasks_client(asynchronous: bool = False) -> Any:
    """A Cloud Tasks client (async: create it inside the event loop that uses it)."""
    emulator = os.environ.get(TASKS_VARIABLE)
    if emulator:
        from .emulator import clients

        return clients.async_tasks_client(emulator) if asynchronous else (
            clients.tasks_client(emulator))
    from google.cloud import tasks_v2

    with _credentials(TASKS_VARIABLE):
        return tasks_v2.CloudTasksAsyncClient() if asynchronous else tasks_v2.CloudTasksClient()


def is_client_factory(given: Any, method: str = "create_task") -> bool:
    """Whether ``given`` (passed where a client is taken) makes a client rather than being
    one: a class, or a callable without the client's ``method`` (``create_task``,
    ``create_job``). A client, a subclass's instance or a mock of one has the method; mocks
    are callable, so being callable alone does not make a factory."""
    return isinstance(given, type) or (callable(given) and not hasattr(given, method))


def scheduler_client(asynchronous: bool = False) -> Any:
    """A Cloud Scheduler client (async: create it inside the event loop that uses it)."""
    emulator = os.environ.get(SCHEDULER_VARIABLE)
    if emulator:
        from .emulator import clients

        return clients.async_scheduler_client(emulator) if asynchronous else (
            clients.scheduler_client(emulator))
    from google.cloud import scheduler_v1

    with _credentials(SCHEDULER_VARIABLE):
        return (scheduler_v1.CloudSchedulerAsyncClient() if asynchronous
                else scheduler_v1.CloudSchedulerClient())


class _credentials:
    """Turns google-auth's "no credentials" into an error that says how to get some."""

    def __init__(self, variable: str) -> None:
        self.variable = variable

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        from google.auth import exceptions as auth_exc

        if isinstance(exc, auth_exc.DefaultCredentialsError):
            raise TransportError(
                "no Google Cloud credentials: run `gcloud auth application-default login` on a "
                "workstation, give the service a service account on Cloud Run, or set "
                f"{self.variable}=HOST:PORT to use the emulator ({exc})"
            ) from exc
