"""Official Google clients connected to an emulator over an insecure channel.

Neither google-cloud-tasks nor google-cloud-scheduler reads an emulator variable, so these
helpers do: ``host`` defaults to ``CLOUD_TASKS_EMULATOR_HOST`` / ``CLOUD_SCHEDULER_EMULATOR_HOST``
(:data:`celery_gcp.platform.TASKS_VARIABLE` / :data:`~celery_gcp.platform.SCHEDULER_VARIABLE`).
This module loads none of the emulator's server, so a process that only talks to an emulator
stays light.

Example::

    client = tasks_client("127.0.0.1:8123")
    client.create_queue(parent="projects/p/locations/l", queue={"name": ".../queues/q"})
"""

from __future__ import annotations

import os
from typing import Any

from ..platform import SCHEDULER_VARIABLE, TASKS_VARIABLE

__all__ = [
    "SCHEDULER_HOST_VARIABLE",
    "TASKS_HOST_VARIABLE",
    "async_scheduler_client",
    "async_tasks_client",
    "scheduler_client",
    "tasks_client",
]

# Older names of the platform's variables, still imported by benchmarks/transport.py.
TASKS_HOST_VARIABLE = TASKS_VARIABLE
SCHEDULER_HOST_VARIABLE = SCHEDULER_VARIABLE


def _host(host: str | None, variable: str) -> str:
    found = host or os.environ.get(variable)
    if not found:
        raise ValueError(f"no emulator address: pass host= or set {variable}=HOST:PORT")
    return found


def tasks_client(host: str | None = None) -> Any:
    """A ``CloudTasksClient`` for the emulator at ``host`` (``CLOUD_TASKS_EMULATOR_HOST``)."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    channel = grpc.insecure_channel(_host(host, TASKS_VARIABLE))
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


def async_tasks_client(host: str | None = None) -> Any:
    """A ``CloudTasksAsyncClient``; call it inside the event loop that will use it."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import (
        CloudTasksGrpcAsyncIOTransport,
    )

    channel = grpc.aio.insecure_channel(_host(host, TASKS_VARIABLE))
    return tasks_v2.CloudTasksAsyncClient(
        transport=CloudTasksGrpcAsyncIOTransport(channel=channel))


def scheduler_client(host: str | None = None) -> Any:
    """A ``CloudSchedulerClient`` for the emulator (``CLOUD_SCHEDULER_EMULATOR_HOST``)."""
    import grpc
    from google.cloud import scheduler_v1
    from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
        CloudSchedulerGrpcTransport,
    )

    channel = grpc.insecure_channel(_host(host, SCHEDULER_VARIABLE))
    return scheduler_v1.CloudSchedulerClient(transport=CloudSchedulerGrpcTransport(channel=channel))


def async_scheduler_client(host: str | None = None) -> Any:
    """A ``CloudSchedulerAsyncClient``; call it inside the event loop that will use it."""
    import grpc
    from google.cloud import scheduler_v1
    from google.cloud.scheduler_v1.services.cloud_scheduler.transports import (
        CloudSchedulerGrpcAsyncIOTransport,
    )

    channel = grpc.aio.insecure_channel(_host(host, SCHEDULER_VARIABLE))
    return scheduler_v1.CloudSchedulerAsyncClient(
        transport=CloudSchedulerGrpcAsyncIOTransport(channel=channel))
