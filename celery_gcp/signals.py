"""Signals, mirroring :mod:`celery.signals`.

Fired here: ``before_task_publish``, ``after_task_publish``, ``task_received``, ``task_prerun``,
``task_postrun``, ``task_success``, ``task_failure``, ``task_retry``, ``task_revoked`` (an expired
task), ``task_unknown``, and the app's ``import_modules``. The task and publish signals are sent
by :class:`SignalLayer`, the first of every app's layers (:mod:`celery_gcp.layers`).

The worker and beat signals (``worker_init``, ``worker_ready``, ``beat_init``, ...) exist so that
code connecting to them keeps importing, but they are never fired: there is no long-running
worker or beat process; Cloud Tasks and Cloud Scheduler call HTTP endpoints instead.

Example::

    from celery_gcp.signals import task_success

    @task_success.connect
    def count(sender, result, **kwargs):
        metrics.incr(sender.name)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from . import layers
from .layers import Layer

if TYPE_CHECKING:
    from .einfo import ExceptionInfo
    from .exceptions import Retry
    from .message import Message
    from .task import Task
    from .transport import Receipt
    from .worker.run import RunResult, TaskRun

__all__ = [
    "Signal",
    "SignalLayer",
    "after_setup_logger",
    "after_setup_task_logger",
    "after_task_publish",
    "beat_embedded_init",
    "beat_init",
    "before_task_publish",
    "celeryd_after_setup",
    "celeryd_init",
    "heartbeat_sent",
    "import_modules",
    "setup_logging",
    "task_failure",
    "task_internal_error",
    "task_postrun",
    "task_prerun",
    "task_received",
    "task_rejected",
    "task_retry",
    "task_revoked",
    "task_success",
    "task_unknown",
    "worker_before_create_process",
    "worker_init",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
    "worker_shutting_down",
]

logger = logging.getLogger(__name__)

Receiver = Callable[..., Any]


class Signal:
    """A named hook that receivers connect to; ``send`` calls each receiver in turn.

    Takes Celery's arguments: ``Signal(providing_args=None, use_caching=False, name=None)``.
    ``use_caching`` changes nothing here (receivers are looked up on each send). A receiver
    that raises is logged and does not stop the others (Celery's behaviour).
    """

    def __init__(self, providing_args: Any = None, use_caching: bool = False,
                 name: str | None = None) -> None:
        self.name = name
        #: The argument names ``send`` passes, as declared (documentation only, as in Celery).
        self.providing_args: set[str] = set(providing_args or ())
        self.use_caching = use_caching
        self.receivers: list[tuple[object, object | None, Receiver]] = []

    @overload
    def connect(self, receiver: Receiver, sender: object | None = None, weak: bool = True,
                dispatch_uid: object | None = None, retry: bool = False) -> Receiver: ...
    @overload
    def connect(self, receiver: None = None, sender: object | None = None, weak: bool = True,
                dispatch_uid: object | None = None,
                retry: bool = False) -> Callable[[Receiver], Receiver]: ...

    def connect(
        self,
        receiver: Receiver | None = None,
        sender: object | None = None,
        weak: bool = True,
        dispatch_uid: object | None = None,
        retry: bool = False,
    ) -> Receiver | Callable[[Receiver], Receiver]:
        """Connect ``receiver``; use as ``@signal.connect`` or ``@signal.connect(sender=...)``.

        ``sender`` limits the receiver to one sender (a task name or task for task signals).
        With ``retry=True`` a receiver that raises is called again until it returns, as in
        Celery: 2 s after the first failure, 2 s longer after each next one, at most 30 s
        (the send waits meanwhile). Receivers are held by strong reference.
        """

        def _connect(fun: Receiver) -> Receiver:
            key = dispatch_uid if dispatch_uid is not None else fun
            if not any(k == key and s == sender for k, s, _ in self.receivers):
                self.receivers.append((key, sender, _Retrying(fun, self) if retry else fun))
                layers.changed()
            return fun

        return _connect(receiver) if receiver is not None else _connect

    def disconnect(
        self,
        receiver: Receiver | None = None,
        sender: object | None = None,
        dispatch_uid: object | None = None,
    ) -> bool:
        """Disconnect a receiver; returns whether one was connected."""
        key = dispatch_uid if dispatch_uid is not None else receiver
        before = len(self.receivers)
        self.receivers = [r for r in self.receivers if not (r[0] == key and r[1] == sender)]
        layers.changed()
        return len(self.receivers) != before

    def has_listeners(self, sender: object | None = None) -> bool:
        """Whether any receiver is connected."""
        return bool(self.receivers)

    def send(self, sender: object | None, **named: Any) -> list[tuple[Receiver, Any]]:
        """Call every receiver for ``sender``; returns ``[(receiver, response), ...]``."""
        responses: list[tuple[Receiver, Any]] = []
        for _key, wanted, fun in self.receivers:
            if wanted is not None and not _matches(wanted, sender):
                continue
            try:
                response = fun(signal=self, sender=sender, **named)
            except Exception as exc:
                logger.exception("signal %s: receiver %r raised %r", self.name, fun, exc)
                response = exc
            responses.append((fun.receiver if isinstance(fun, _Retrying) else fun, response))
        return responses

    def __repr__(self) -> str:
        return f"<Signal: {self.name} receivers={len(self.receivers)}>"


#: The waits between the calls of a receiver connected with ``retry=True`` (Celery's).
_RETRY_FIRST, _RETRY_STEP, _RETRY_MAX = 2.0, 2.0, 30.0
_wait = time.sleep  # the pause between two calls of a retried receiver (tests replace it)


class _Retrying:
    """A receiver connected with ``retry=True``: called again after each error, until it
    returns."""

    __slots__ = ("receiver", "signal")

    def __init__(self, receiver: Receiver, signal: Signal) -> None:
        self.receiver = receiver
        self.signal = signal

    def __call__(self, *args: Any, **named: Any) -> Any:
        interval = _RETRY_FIRST
        while True:
            try:
                return self.receiver(*args, **named)
            except Exception as exc:
                logger.error("signal %s: receiver %r raised %r; calling it again in %g s",
                             self.signal.name, self.receiver, exc, interval)
            _wait(interval)
            interval = min(interval + _RETRY_STEP, _RETRY_MAX)

    def __repr__(self) -> str:
        return f"<retrying {self.receiver!r}>"


def _matches(wanted: object, sender: object) -> bool:
    # Celery task signals are sent with the task as sender, publish signals with its name;
    # accept either spelling from the receiver.
    return wanted is sender or wanted == sender or getattr(sender, "name", None) == wanted


before_task_publish = Signal(name="before_task_publish")
after_task_publish = Signal(name="after_task_publish")
task_received = Signal(name="task_received")
task_prerun = Signal(name="task_prerun")
task_postrun = Signal(name="task_postrun")
task_success = Signal(name="task_success")
task_retry = Signal(name="task_retry")
task_failure = Signal(name="task_failure")
task_internal_error = Signal(name="task_internal_error")
task_revoked = Signal(name="task_revoked")
task_rejected = Signal(name="task_rejected")
task_unknown = Signal(name="task_unknown")
import_modules = Signal(name="import_modules")

# Never fired: there is no worker or beat process (see the module docstring).
celeryd_init = Signal(name="celeryd_init")
celeryd_after_setup = Signal(name="celeryd_after_setup")
worker_init = Signal(name="worker_init")
worker_before_create_process = Signal(name="worker_before_create_process")
worker_process_init = Signal(name="worker_process_init")
worker_process_shutdown = Signal(name="worker_process_shutdown")
worker_ready = Signal(name="worker_ready")
worker_shutdown = Signal(name="worker_shutdown")
worker_shutting_down = Signal(name="worker_shutting_down")
heartbeat_sent = Signal(name="heartbeat_sent")
beat_init = Signal(name="beat_init")
beat_embedded_init = Signal(name="beat_embedded_init")
setup_logging = Signal(name="setup_logging")
after_setup_logger = Signal(name="after_setup_logger")
after_setup_task_logger = Signal(name="after_setup_task_logger")


class SignalLayer(Layer):
    """Sends Celery's task and publish signals at their steps, with Celery's arguments; a
    step whose signal has no receiver is skipped at no cost."""

    _SIGNALS: dict[str, Signal] = {
        "before_send": before_task_publish, "after_send": after_task_publish,
        "received": task_received, "before_run": task_prerun, "succeeded": task_success,
        "retried": task_retry, "failed": task_failure, "after_run": task_postrun,
        "skipped": task_revoked,
    }

    def wants(self, step: str) -> bool:
        """Whether the step's signal has a receiver."""
        return bool(self._SIGNALS[step].receivers)

    def before_send(self, message: Message) -> None:
        """``before_task_publish``."""
        before_task_publish.send(
            sender=message.task, body=message.body, exchange="", routing_key=message.queue,
            headers=_protocol_headers(message), properties={}, declare=[], retry_policy=None)

    def after_send(self, message: Message, receipt: Receipt) -> None:
        """``after_task_publish``."""
        after_task_publish.send(sender=message.task, body=message.body, exchange="",
                                routing_key=message.queue, headers=_protocol_headers(message))

    def received(self, run: TaskRun) -> None:
        """``task_received``."""
        task_received.send(sender=run.task.app, request=run.request)

    def before_run(self, run: TaskRun) -> None:
        """``task_prerun``."""
        task_prerun.send(sender=run.task, task_id=run.message.id, task=run.task,
                         args=run.args, kwargs=run.kwargs)

    def succeeded(self, run: TaskRun, retval: Any) -> None:
        """``task_success``."""
        task_success.send(sender=run.task, result=retval)

    def retried(self, run: TaskRun, retry: Retry, einfo: ExceptionInfo) -> None:
        """``task_retry``."""
        task_retry.send(sender=run.task, request=run.request, reason=retry, einfo=einfo)

    def failed(self, run: TaskRun, exc: BaseException, einfo: ExceptionInfo) -> None:
        """``task_failure``."""
        task_failure.send(sender=run.task, task_id=run.request.id, exception=exc,
                          args=run.args, kwargs=run.kwargs, traceback=exc.__traceback__,
                          einfo=einfo)

    def after_run(self, run: TaskRun, result: RunResult) -> None:
        """``task_postrun``."""
        task_postrun.send(sender=run.task, task_id=run.message.id, task=run.task,
                          args=run.args, kwargs=run.kwargs, retval=result.retval,
                          state=result.state)

    def skipped(self, task: Task[..., Any], message: Message, reason: str) -> None:
        """``task_revoked`` (``expired=True``)."""
        from .context import Context

        request = Context(id=message.id, task=task.name, called_directly=False)
        task_revoked.send(sender=task, request=request, terminated=False, signum=None,
                          expired=reason == "expired")


def _protocol_headers(message: Message) -> dict[str, Any]:
    """The message's metadata under Celery's protocol-2 header names."""
    return {
        "id": message.id, "task": message.task, "retries": message.retries,
        "eta": message.eta and message.eta.isoformat(),
        "expires": message.expires and message.expires.isoformat(),
        "root_id": message.root_id, "parent_id": message.parent_id,
        **message.headers,
    }
