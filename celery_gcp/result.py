"""Results, mirroring :mod:`celery.result`.

With a result store (``result_backend``; :mod:`celery_gcp.results`) an :class:`AsyncResult`
reads its task's state and result from it, as Celery's does; without one its state is what
Cloud Tasks can tell and :meth:`AsyncResult.get` says there is no store and what to do
instead. Eager calls return an :class:`EagerResult`, which holds the outcome, as in Celery.
The classes live in :mod:`celery_gcp.results.asyncresult` and :mod:`celery_gcp.results.groups`.
"""

from __future__ import annotations

from .results.asyncresult import AsyncResult, ResultBase, result_from_tuple
from .results.eager import EagerResult
from .results.groups import GroupResult, ResultSet
from .results.joining import allow_join_result, assert_will_not_block, denied_join_result

__all__ = ["AsyncResult", "EagerResult", "GroupResult", "ResultBase", "ResultSet",
           "allow_join_result", "assert_will_not_block", "denied_join_result",
           "result_from_tuple"]
