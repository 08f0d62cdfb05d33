"""Exception info passed to task hooks (``on_failure``, ``on_retry``, ``after_return``)."""

from __future__ import annotations

import traceback as _traceback
from types import TracebackType

__all__ = ["ExceptionInfo"]


class ExceptionInfo:
    """An exception with its formatted traceback, like Celery's ``einfo`` argument."""

    def __init__(self, exception: BaseException) -> None:
        self.exception = exception
        self.type: type[BaseException] = type(exception)
        self.tb: TracebackType | None = exception.__traceback__
        self.traceback = "".join(
            _traceback.format_exception(self.type, exception, exception.__traceback__)
        )
        self.internal = False

    def __str__(self) -> str:
        return self.traceback

    def __repr__(self) -> str:
        return f"<ExceptionInfo: {self.exception!r}>"
