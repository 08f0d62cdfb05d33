"""Errors, mirroring :mod:`celery.exceptions` so ``from celery.exceptions import X`` keeps working.

Celery's own names keep Celery's hierarchy::

    CeleryError
     ├── TaskPredicate: Retry, Ignore, Reject
     ├── ImproperlyConfigured
     ├── SecurityError
     └── TaskError: NotRegistered (KeyError), AlreadyRegistered, TimeoutError,
                    MaxRetriesExceededError, TaskRevokedError, InvalidTaskError, QueueNotFound,
                    ChordError
    SoftTimeLimitExceeded, TimeLimitExceeded   (plain exceptions, as in Celery)
    BackendError   (a plain exception, as in Celery) a result store that cannot be read or
                   written (unreachable, refused); the message names its URL, password masked
    OperationalError   (kombu's, re-exported by celery.exceptions as here) a send that failed:
                       the base of TransportError
    ParseException (ValueError)   a crontab field that cannot be parsed (Celery's is a plain
                                  Exception; here it is also the ValueError of the other
                                  crontab field errors)

This project's own errors share one root, :class:`CeleryGcpError`::

    CeleryGcpError (CeleryError)
     ├── TaskArgumentError (TypeError)   a call the worker would reject, caught at the call site
     │    ├── MissingParamError (ValueError)  a route call without a required parameter
     │    ├── WrongTypeError (ValueError)     a route call's value that does not validate
     │    └── BadMethodError             a route whose method cannot carry the call
     ├── MessageDecodeError (ValueError) a request whose X-Celery-* metadata is malformed
     ├── AuthError (SecurityError)       a caller that may not run tasks (401/403/503)
     ├── TransportError (OperationalError)  the transport could not hand a message over
     │    ├── DuplicateTaskError         a caller-given task_id that was already used
     │    ├── PartialSendError           some messages of a bulk send failed
     │    └── MessageTooLargeError       a task over Cloud Tasks' 1 MB limit
     ├── ScheduleError (ValueError)      a periodic schedule Cloud Scheduler cannot run
     │    └── InvalidSchedule            a cron expression or time zone it would reject
     ├── NoResultBackendError (NotImplementedError)  a result or a chord, with no result store
     ├── ResultStoreError                the result store could not be read or written
     └── NotSupportedError               a Celery feature left out on purpose (absent.py)
          ├── NotSupportedAttributeError (AttributeError)  ``app.control``, ...
          └── NotSupportedImportError (ImportError)        ``celery_gcp.contrib.abortable``, ...

(The emulator's own errors, which become gRPC status codes, are under
:class:`EmulatorError`.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = [
    "AlreadyRegistered",
    "AlwaysEagerIgnored",
    "AuthError",
    "BackendError",
    "BadMethodError",
    "CDeprecationWarning",
    "CPendingDeprecationWarning",
    "CeleryError",
    "CeleryGcpError",
    "CeleryGcpWarning",
    "CeleryWarning",
    "ChordError",
    "DuplicateTaskError",
    "EmulatorError",
    "Ignore",
    "ImproperlyConfigured",
    "InvalidSchedule",
    "InvalidTaskError",
    "MaxRetriesExceededError",
    "MessageDecodeError",
    "MessageTooLargeError",
    "MissingParamError",
    "NoResultBackendError",
    "NotRegistered",
    "NotSupportedAttributeError",
    "NotSupportedError",
    "NotSupportedImportError",
    "OperationalError",
    "ParseException",
    "PartialSendError",
    "QueueNotFound",
    "Reject",
    "ResultStoreError",
    "Retry",
    "ScheduleError",
    "SecurityError",
    "SoftTimeLimitExceeded",
    "TaskArgumentError",
    "TaskError",
    "TaskPredicate",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "TimeoutError",
    "TransportError",
    "WrongTypeError",
]


class CeleryWarning(UserWarning):
    """Base class for Celery's warnings."""


class AlwaysEagerIgnored(CeleryWarning):
    """A call asked for something eager mode cannot do."""


class CeleryGcpWarning(CeleryWarning):
    """A setting or option that has no meaning on Google Cloud, and is ignored."""


class CPendingDeprecationWarning(PendingDeprecationWarning):
    """Celery's pending-deprecation warning."""


class CDeprecationWarning(DeprecationWarning):
    """Celery's deprecation warning."""


class CeleryError(Exception):
    """Base class for Celery's errors."""


class TaskPredicate(CeleryError):
    """Base class for exceptions that steer what happens to a task."""


class Retry(TaskPredicate):
    """The task is to be retried later; raised by :meth:`Task.retry`.

    ``when`` is the countdown in seconds or the ETA; ``sig`` the signature of the retry.
    """

    #: The message of the retry (a :class:`~celery_gcp.message.Message`), which eager runs
    #: execute at once.
    retry_message: Any = None

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | str | None = None,
        when: float | datetime | None = None,
        is_eager: bool = False,
        sig: Any = None,
    ) -> None:
        self.message = message
        if isinstance(exc, str):
            self.exc: BaseException | None = None
            self.excs: str | None = exc
        else:
            self.exc, self.excs = exc, (repr(exc) if exc is not None else None)
        self.when = when
        self.is_eager = is_eager
        self.sig = sig
        super().__init__(message, exc, when)

    def humanize(self) -> str:
        """Say when the retry happens, e.g. ``in 10s``."""
        if isinstance(self.when, int | float):
            return f"in {self.when}s"
        return f"at {self.when}"

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.excs:
            return f"Retry {self.humanize()}: {self.excs}"
        return f"Retry {self.humanize()}"


RetryTaskError = Retry


class Ignore(TaskPredicate):
    """Drop the task on purpose: no state change, no retry (HTTP 200)."""


class Reject(TaskPredicate):
    """Reject the task: ``requeue=True`` has Cloud Tasks deliver it again (HTTP 503)."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        self.reason = reason
        self.requeue = requeue
        super().__init__(reason, requeue)

    def __repr__(self) -> str:
        return f"reject requeue={self.requeue}: {self.reason}"


class ImproperlyConfigured(CeleryError):
    """The configuration is wrong; the message says which setting and how to fix it."""


class BackendError(Exception):
    """A result store could not be read or written; the message names the store's URL
    (password masked) and the reason (``celery.exceptions.BackendError``)."""


class SecurityError(CeleryError):
    """A security check failed."""


class TaskError(CeleryError):
    """A task-related error."""


class QueueNotFound(KeyError, TaskError):
    """A queue is missing."""


class NotRegistered(KeyError, TaskError):
    """No task of that name is registered."""

    def __repr__(self) -> str:
        return f"NotRegistered({self.args[0]!r})" if self.args else "NotRegistered()"


class AlreadyRegistered(TaskError):
    """A task of that name is already registered."""


class TimeoutError(TaskError):
    """An operation timed out."""


class MaxRetriesExceededError(TaskError):
    """The task asked to retry more often than its ``max_retries`` allows."""

    def __init__(self, *args: Any, task_args: Any = None, task_kwargs: Any = None) -> None:
        self.task_args = task_args
        self.task_kwargs = task_kwargs
        super().__init__(*args)


class TaskRevokedError(TaskError):
    """The task was revoked, so it has no result."""


class InvalidTaskError(TaskError):
    """The task has invalid data or is not properly constructed."""


class ChordError(TaskError):
    """A chord's header had a failing member: the body is not run, its errbacks get this."""


class SoftTimeLimitExceeded(Exception):
    """Celery's soft time limit; accepted, but never raised here (see the migration guide)."""


class TimeLimitExceeded(Exception):
    """Celery's hard time limit; on Cloud Tasks the request's dispatch deadline plays this role."""


class ParseException(ValueError):
    """A crontab field that cannot be parsed: an empty element or step, a negative number
    (``celery.schedules.ParseException``)."""


class CeleryGcpError(CeleryError):
    """Root of this project's own errors."""


class TaskArgumentError(CeleryGcpError, TypeError):
    """A task was called with arguments the worker would reject; nothing was sent.

    The message names the task, the argument and the problem.
    """


class MissingParamError(TaskArgumentError, ValueError):
    """A required parameter of a route was not given (fastapi-gcp-tasks' name; a
    ``ValueError`` too, as there)."""


class WrongTypeError(TaskArgumentError, ValueError):
    """A value does not validate against its route parameter's annotation (a ``ValueError``
    too, as in fastapi-gcp-tasks)."""


class BadMethodError(TaskArgumentError):
    """A route's method cannot be used as a task (none Cloud Tasks calls, or a body with a
    method that carries none)."""


class MessageDecodeError(CeleryGcpError, ValueError):
    """An incoming request's ``X-Celery-*`` metadata is malformed."""


class AuthError(CeleryGcpError, SecurityError):
    """A request that may not run a task: ``status`` 401 (no valid token), 403 (not
    allowed) or 503 (no signing keys to check the token with). ``reason`` is safe to log and
    to answer: it holds nothing of the token."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class OperationalError(Exception):
    """kombu's (and ``celery.exceptions``') ``OperationalError``: a message could not be sent.
    Here it is the base of :class:`TransportError`; also importable as
    ``celery_gcp.kombu.exceptions.OperationalError``."""


class TransportError(CeleryGcpError, OperationalError):
    """The transport could not hand the message over; the message says what to do."""


class PartialSendError(TransportError):
    """Some messages of a bulk send failed; ``results`` holds, in order, each message's
    AsyncResult or the exception that stopped it. The others were sent."""

    def __init__(self, results: list[Any]) -> None:
        self.results = results
        failed = [r for r in results if isinstance(r, BaseException)]
        super().__init__(f"{len(failed)} of {len(results)} messages were not sent: "
                         + "; ".join(repr(f) for f in failed[:3]))


class MessageTooLargeError(TransportError, ValueError):
    """A task is over Cloud Tasks' 1 MB limit; the message names its size."""


class DuplicateTaskError(TransportError):
    """A caller-given ``task_id`` was already used for a task."""

    def __init__(self, task_id: str, message: str | None = None) -> None:
        self.task_id = task_id
        super().__init__(message or f"a task with id {task_id!r} already exists")


class ScheduleError(CeleryGcpError, ValueError):
    """A periodic schedule Cloud Scheduler cannot run as written; the message says what to
    use instead (a crontab, or a whole number of seconds for an interval)."""


class InvalidSchedule(ScheduleError):
    """A cron expression or time zone that Cloud Scheduler would reject; the message says what
    is wrong, e.g. ``field 5 (day of week) '8' is out of range 0-7``."""


class NoResultBackendError(CeleryGcpError, NotImplementedError):
    """A result (``AsyncResult.get()``) or a chord (which joins on results) was asked for,
    but celery_gcp keeps no result store."""


class ResultStoreError(CeleryGcpError, BackendError):
    """The result store ``result_backend`` names cannot be reached or refused the call; the
    message names its URL (password masked) and what to check. A worker run that meets it
    answers 503, so Cloud Tasks delivers the task again: its outcome is never lost."""


class NotSupportedError(CeleryGcpError):
    """A Celery feature that celery_gcp leaves out on purpose: the message says so, what to do
    instead and which section of the migration guide covers it (table: ``absent.py``)."""


class NotSupportedAttributeError(NotSupportedError, AttributeError):
    """An absent Celery attribute (``app.control``, ``from celery_gcp import bugreport``)."""


class NotSupportedImportError(NotSupportedError, ImportError):
    """An absent Celery module (``import celery_gcp.contrib.abortable``)."""


class EmulatorError(CeleryGcpError):
    """An error of the local emulator's own (a bad resource name, a refused call)."""
