"""The public surface: pinned names, Celery's import paths, and lazy Google imports."""

from __future__ import annotations

import subprocess
import sys

import celery_gcp


def test_top_level_names_are_pinned() -> None:
    assert sorted(celery_gcp.__all__) == [
        "AsyncResult", "Celery", "EagerResult", "Signature", "Task", "chain", "chord",
        "chunks", "current_app", "current_task",
        "get_current_app", "group", "maybe_signature", "shared_task", "signature", "subtask",
        "uuid", "xmap", "xstarmap",
    ]


def test_celery_import_paths_have_mirrors() -> None:
    from celery_gcp.canvas import Signature, chain, group, signature  # noqa: F401
    from celery_gcp.exceptions import (  # noqa: F401
        Ignore,
        ImproperlyConfigured,
        MaxRetriesExceededError,
        NotRegistered,
        Reject,
        Retry,
        SoftTimeLimitExceeded,
        TimeLimitExceeded,
        TimeoutError,
    )
    from celery_gcp.result import AsyncResult, EagerResult  # noqa: F401
    from celery_gcp.schedules import ParseException, crontab, crontab_parser  # noqa: F401
    from celery_gcp.signals import (  # noqa: F401
        after_task_publish,
        before_task_publish,
        task_failure,
        task_postrun,
        task_prerun,
        task_retry,
        task_success,
        worker_ready,
    )
    from celery_gcp.states import (  # noqa: F401
        ALL_STATES,
        FAILURE,
        PENDING,
        PRECEDENCE,
        PRECEDENCE_LOOKUP,
        SUCCESS,
        precedence,
        state,
    )
    from celery_gcp.utils.log import get_task_logger

    assert get_task_logger("x.y").parent.name == "celery.task"  # type: ignore[union-attr]


def test_exception_hierarchy_matches_celery() -> None:
    import celery.exceptions as ce

    import celery_gcp.exceptions as ge

    for name in ["Retry", "Ignore", "Reject", "MaxRetriesExceededError", "NotRegistered",
                 "ImproperlyConfigured", "TimeoutError", "TaskError", "TaskPredicate",
                 "QueueNotFound", "AlreadyRegistered", "TaskRevokedError", "InvalidTaskError",
                 "SecurityError"]:
        theirs = [c.__name__ for c in getattr(ce, name).__mro__]
        ours = [c.__name__ for c in getattr(ge, name).__mro__ if c is not ge.CeleryGcpError]
        assert ours == theirs, name


def test_import_does_not_load_google_clients() -> None:
    code = (
        "import sys, celery_gcp; from celery_gcp import Celery; Celery('x').router; "
        "print([m for m in sys.modules if m.startswith(('google.cloud', 'google.api_core', "
        "'grpc'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
