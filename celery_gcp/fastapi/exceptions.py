"""The errors of a route call, under the names fastapi-gcp-tasks used (defined with every other
error in :mod:`celery_gcp.exceptions`).

Each is a :class:`~celery_gcp.exceptions.TaskArgumentError` (so a ``TypeError``), raised before
anything is sent.
"""

from __future__ import annotations

from ..exceptions import BadMethodError, MissingParamError, WrongTypeError

__all__ = ["BadMethodError", "MissingParamError", "WrongTypeError"]
