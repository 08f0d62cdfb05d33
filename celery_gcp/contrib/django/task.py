"""``DjangoTask``: Celery 5.4's task class for Django, with ``delay_on_commit()``.

When ``DJANGO_SETTINGS_MODULE`` is set (and Django is installed) as the app is created, it is
the app's default task class (``app.Task``), as Celery's Django fixup makes it; an app given
its own ``task_cls`` keeps it (subclass ``DjangoTask`` to have both).

Example::

    with transaction.atomic():
        order = Order.objects.create(...)
        send_receipt.delay_on_commit(order.pk)   # sent once the transaction commits
"""

from __future__ import annotations

import functools
from typing import Any, ParamSpec, TypeVar

from ...task import Task

__all__ = ["DjangoTask"]

P = ParamSpec("P")
R = TypeVar("R")


class DjangoTask(Task[P, R]):
    """A task that can be sent when the current database transaction commits."""

    def delay_on_commit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """``delay(*args, **kwargs)`` from Django's ``transaction.on_commit()``: sent once the
        current transaction commits (at once outside one), never if it rolls back. Returns
        ``None``, as in Celery: there is no task id before the send."""
        from django.db import transaction

        transaction.on_commit(functools.partial(self.delay, *args, **kwargs))

    def apply_async_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """``apply_async(*args, **kwargs)`` from Django's ``transaction.on_commit()``;
        returns ``None``."""
        from django.db import transaction

        transaction.on_commit(functools.partial(self.apply_async, *args, **kwargs))
