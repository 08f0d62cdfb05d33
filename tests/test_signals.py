"""``celery_gcp.signals.Signal`` with Celery's arguments: ``Signal(providing_args=,
use_caching=, name=)`` and ``connect(..., retry=True)``."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from celery_gcp import Celery, signals
from celery_gcp.signals import Signal


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses a retried receiver asks for, recorded instead of slept."""
    asked: list[float] = []
    monkeypatch.setattr(signals, "_wait", asked.append)
    return asked


class Flaky:
    """A receiver that raises ``ConnectionError`` on its first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, val: Any = None, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"call {self.calls}")
        return val


def receiver_1_arg(val: Any, **kwargs: Any) -> Any:
    return val


def test_signal_takes_celerys_arguments() -> None:
    sig = Signal(providing_args=["val"], use_caching=True, name="my_signal")
    assert (sig.name, sig.providing_args, sig.use_caching) == ("my_signal", {"val"}, True)
    sig.connect(receiver_1_arg, sender="me")
    assert sig.send(sender="me", val="test") == [(receiver_1_arg, "test")]
    assert sig.send(sender="other", val="test") == []
    assert sig.disconnect(receiver_1_arg, sender="me")
    assert sig.receivers == []
    unnamed = Signal()
    unnamed.connect(receiver_1_arg)
    assert unnamed.send(sender=None, val=1) == [(receiver_1_arg, 1)]
    assert "None" in repr(unnamed)


def test_connect_takes_celerys_positional_options() -> None:
    sig = Signal(name="positional")
    sig.connect(receiver_1_arg, "me", True, "uid-1", False)
    assert sig.receivers[0][:2] == ("uid-1", "me")
    assert sig.disconnect(dispatch_uid="uid-1", sender="me")


def test_connect_retry_calls_the_receiver_until_it_returns(
        waits: list[float], caplog: pytest.LogCaptureFixture) -> None:
    sig = Signal(providing_args=["val"], name="retried")
    flaky = Flaky(failures=2)
    assert sig.connect(flaky, sender="me", retry=True) is flaky
    with caplog.at_level(logging.ERROR, logger="celery_gcp.signals"):
        assert sig.send(sender="me", val="test") == [(flaky, "test")]
    assert flaky.calls == 3
    assert waits == [2.0, 4.0]
    assert ["call 1" in r.getMessage() for r in caplog.records] == [True, False]
    assert all("again in" in r.getMessage() for r in caplog.records)
    assert sig.disconnect(flaky, sender="me")
    assert sig.receivers == []


def test_retried_receiver_waits_grow_to_thirty_seconds(waits: list[float]) -> None:
    sig = Signal(name="patient")
    sig.connect(Flaky(failures=18), retry=True)
    sig.send(sender=None)
    assert waits == [*(2.0 * n for n in range(1, 16)), 30.0, 30.0, 30.0]


def test_retry_with_dispatch_uid_and_as_a_decorator(waits: list[float]) -> None:
    sig = Signal(name="decorated")
    sig.connect(receiver_1_arg, sender="me", retry=True, dispatch_uid="abc123")
    assert sig.receivers[0][0] == "abc123"
    assert sig.disconnect(receiver_1_arg, sender="me", dispatch_uid="abc123")

    @sig.connect(sender="me", retry=True)
    def succeeds(val: Any, **kwargs: Any) -> Any:
        return val

    assert sig.send(sender="me", val="test") == [(succeeds, "test")]
    assert sig.disconnect(succeeds, sender="me")
    assert sig.receivers == []
    assert waits == []


def test_a_retried_receiver_at_the_worker_lets_the_task_run(
        app: Celery, worker: Any, waits: list[float]) -> None:
    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    flaky = Flaky(failures=1)
    signals.task_prerun.connect(flaky, sender="proj.add", retry=True)
    try:
        with worker(app) as w:
            add.delay(2, 3)
            [response] = w.deliver_sent()
    finally:
        signals.task_prerun.disconnect(flaky, sender="proj.add")
    assert response.json()["result"] == 5
    assert flaky.calls == 2
    assert waits == [2.0]


def test_connect_refuses_options_celery_does_not_take() -> None:
    with pytest.raises(TypeError):
        Signal(name="strict").connect(receiver_1_arg, retries=3)  # type: ignore[call-overload]
