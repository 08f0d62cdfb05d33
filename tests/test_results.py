"""Results: no result store, said clearly; EagerResult as in Celery."""

from __future__ import annotations

import pytest

from celery_gcp import AsyncResult, Celery, EagerResult
from celery_gcp.exceptions import NoResultBackendError


def test_async_result_of_an_unknown_id_is_pending(app: Celery) -> None:
    result = app.AsyncResult("some-id")
    assert result.id == result.task_id == "some-id"
    assert result.state == result.status == "PENDING"
    assert (result.ready(), result.successful(), result.failed()) == (False, False, False)
    assert result.result is None
    assert result == AsyncResult("some-id")
    assert result == "some-id"


def test_get_without_a_result_store_says_what_to_do(app: Celery) -> None:
    @app.task
    def t() -> int:
        return 1

    result = t.delay()
    with pytest.raises(NoResultBackendError) as info:
        result.get(timeout=1)
    assert result.id in str(info.value)
    assert "no result store" in str(info.value)
    assert "task_always_eager" in str(info.value)
    assert isinstance(info.value, NotImplementedError)


def test_eager_result_reports_its_outcome() -> None:
    ok = EagerResult("a", 3, "SUCCESS")
    assert ok.get() == 3
    assert ok.ready()
    assert ok.successful()
    failed = EagerResult("b", ValueError("x"), "FAILURE", traceback="tb")
    with pytest.raises(ValueError):
        failed.get()
    assert failed.get(propagate=False).args == ("x",)
    assert failed.traceback == "tb"
