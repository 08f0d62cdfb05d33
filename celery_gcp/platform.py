"""What Google's platform fixes: Cloud Tasks' and Cloud Scheduler's limits, header names, id
patterns, and the environment variables that point clients at an emulator.

Every module that needs one of these facts reads it here, so a limit is written once. This
module imports nothing of the package and nothing outside the standard library: the emulator,
the transport and the worker all use it. The id patterns end with ``\\Z``, not ``$`` (which
also matches before a final newline): ``match`` takes a whole id or nothing.
"""

from __future__ import annotations

import re

__all__ = [
    "CERTS_URL_VARIABLE",
    "DEADLINE_RANGE",
    "HORIZON_SECONDS",
    "JOB_ID",
    "LOCATION_PATH",
    "MAX_BATCH",
    "MAX_BATCH_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_PAGE_SIZE",
    "MAX_SCHEDULE_AHEAD",
    "MAX_TASK_BYTES",
    "MAX_URL_LENGTH",
    "PLATFORM_HEADERS",
    "PLATFORM_PREFIXES",
    "QUEUE_ID",
    "QUEUE_PATH",
    "QUEUE_REUSE_SECONDS",
    "RELAY_HEADER",
    "SCHEDULER_VARIABLE",
    "TASKS_VARIABLE",
    "TASK_ID",
    "TASK_RETENTION_SECONDS",
]

# -- Cloud Tasks ---------------------------------------------------------------------------------

#: The largest task Cloud Tasks accepts (the whole task: body, headers, URL), in bytes.
MAX_TASK_BYTES = 1024 * 1024
#: The longest URL a task or job may call, after encoding.
MAX_URL_LENGTH = 2083
#: The size of a task's or job's headers must be under this many bytes.
MAX_HEADER_BYTES = 80 * 1024
#: The largest ``page_size`` of a list call.
MAX_PAGE_SIZE = 1000
#: How far ahead a task's ``schedule_time`` may be.
MAX_SCHEDULE_AHEAD = 30 * 86400
#: Where the transport hops a task due further ahead: an hour short of the limit, so a hop
#: never lands past it.
HORIZON_SECONDS = MAX_SCHEDULE_AHEAD - 3600
#: The tasks one BatchCreateTasks call takes.
MAX_BATCH = 100
#: The bytes sent in one batch: below gRPC's default 4 MB message limit.
MAX_BATCH_BYTES = 3 * 1024 * 1024
#: How long a deleted queue's name can't be used for a new queue: DeleteQueue's "tombstone
#: window of up to 3 days" (older docs said 7), the whole of it.
QUEUE_REUSE_SECONDS = 3 * 86400.0
#: How long a task stays in its queue: "After a task is 31 days old, the task will be deleted
#: regardless of whether it was dispatched or not" (CreateQueue).
TASK_RETENTION_SECONDS = 31 * 86400.0
#: A request's dispatch deadline, in seconds: the lowest and highest Cloud Tasks allows.
DEADLINE_RANGE = (15.0, 1800.0)
#: A task id (the last segment of a task name).
TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}\Z")
#: A queue id (the last segment of a queue name).
QUEUE_ID = re.compile(r"^[A-Za-z0-9-]{1,100}\Z")
#: ``projects/P/locations/L``.
LOCATION_PATH = re.compile(r"^projects/[^/\s]+/locations/[^/\s]+\Z")
#: ``projects/P/locations/L/queues/Q``.
QUEUE_PATH = re.compile(r"^projects/[^/\s]+/locations/[^/\s]+/queues/[A-Za-z0-9-]{1,100}\Z")

#: Request headers Cloud Tasks or Cloud Scheduler set or replace on delivery (lower case), and
#: the prefixes reserved for the platform and this project's metadata: a route parameter
#: cannot travel in one.
PLATFORM_HEADERS = frozenset({"host", "content-length", "user-agent", "x-forwarded-for",
                              "x-forwarded-proto", "x-cloudscheduler"})
PLATFORM_PREFIXES = ("x-google-", "x-appengine-", "x-cloudtasks-", "x-cloudscheduler-",
                     "x-celery-")

# -- Cloud Scheduler -----------------------------------------------------------------------------

#: A job id (the last segment of a job name), as ``X-CloudScheduler-JobName`` carries it.
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}\Z")

# -- this project's wire format ------------------------------------------------------------------

#: Set on a relay hop of a task due beyond :data:`HORIZON_SECONDS`: the receiving endpoint
#: sends the task on towards its ETA instead of running it.
RELAY_HEADER = "X-Celery-Relay"

# -- emulators -----------------------------------------------------------------------------------

#: ``HOST:PORT`` of a Cloud Tasks emulator; where set, clients are made for it.
TASKS_VARIABLE = "CLOUD_TASKS_EMULATOR_HOST"
#: ``HOST:PORT`` of a Cloud Scheduler emulator.
SCHEDULER_VARIABLE = "CLOUD_SCHEDULER_EMULATOR_HOST"
#: Where a worker finds the keys that sign the emulator's OIDC tokens.
CERTS_URL_VARIABLE = "CELERY_GCP_OIDC_CERTS_URL"
