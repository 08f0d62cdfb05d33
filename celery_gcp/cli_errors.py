"""What a failed ``celery-gcp`` command prints: one line that says what was wrong and how to
fix it, never a traceback (``CELERY_GCP_TRACEBACK=1`` shows one, for a bug report).

The command group (cli/__init__.py) hands every error that escapes a command to :func:`one_line`.
Google's errors are recognised by their class names, so no Google library is imported here.
"""

from __future__ import annotations

import os

__all__ = ["TRACEBACK_VARIABLE", "one_line"]

TRACEBACK_VARIABLE = "CELERY_GCP_TRACEBACK"

_NO_CREDENTIALS = ("no Google Cloud credentials: run `gcloud auth application-default login` "
                   "on a workstation, give the service a service account on Cloud Run, or set "
                   "CLOUD_TASKS_EMULATOR_HOST=HOST:PORT to use the emulator")


def one_line(exc: Exception) -> str | None:
    """The line to print for ``exc``; ``None`` when the traceback was asked for."""
    if os.environ.get(TRACEBACK_VARIABLE, "").lower() in ("1", "true", "yes"):
        return None
    text = " ".join(str(exc).split()) or "(no message)"
    names = {f"{kind.__module__}.{kind.__qualname__}" for kind in type(exc).__mro__}
    from .exceptions import BackendError, CeleryError

    if isinstance(exc, CeleryError | BackendError):  # our messages say what to do
        return text
    if "google.auth.exceptions.DefaultCredentialsError" in names:
        return f"{_NO_CREDENTIALS} ({text})"
    if "google.auth.exceptions.GoogleAuthError" in names:
        return f"Google Cloud credentials failed: {text} (check them with `gcloud auth list`)"
    if "google.api_core.exceptions.GoogleAPICallError" in names:
        return f"Google Cloud refused the call: {text}"
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {text}"
    return (f"unexpected {type(exc).__name__}: {text} (set {TRACEBACK_VARIABLE}=1 to see the "
            "traceback)")
