"""The errors of a route call, under the names fastapi-gcp-tasks used.

Each is a :class:`~celery_gcp.exceptions.TaskArgumentError` (so a ``TypeError``), raised before
anything is sent.
"""

from __future__ import annotations

from ..exceptions import TaskArgumentError

__all__ = ["BadMethodError", "MissingParamError", "WrongTypeError"]


class MissingParamError(TaskArgumentError):
    """A required parameter of the route was not given."""


class WrongTypeError(TaskArgumentError):
    """A value does not validate against its parameter's annotation."""


class BadMethodError(TaskArgumentError):
    """The route's method cannot be used as a task (none Cloud Tasks calls, or a body with a
    method that carries none)."""
