"""The extension seam: ordered layers around every send and every run.

A :class:`Layer` overrides the methods it needs; an app calls its layers (``app.layers``) in
the order they were added, at each step of a send (:mod:`celery_gcp.sending`) and of a run
(:mod:`celery_gcp.worker.run`), for ``@app.task`` tasks, ``app.TaskRoute`` routes, beat fires
and eager runs alike. Celery's signals are one layer (:class:`celery_gcp.signals.SignalLayer`,
always first); the ``dev`` task log is another.

Example::

    class Timing(Layer):
        def before_run(self, run):
            run.started = time.monotonic()

        def after_run(self, run, result):
            metrics.observe(run.task.name, time.monotonic() - run.started)

    app.layers.add(Timing())

``before_send`` may return a changed copy of the message, which is sent instead (and seen by
the layers after it). ``before_run``, ``succeeded``, ``retried`` and ``failed`` may return an
awaitable, which the run awaits before it goes on: a layer doing I/O on the async path
(``run.asynchronous``; the result store's writes) returns one instead of blocking the event
loop. A layer that has nothing to do says so with :meth:`Layer.wants`; layers
that want no step of a send cost nothing on the send path (the per-step lists are rebuilt only
when a layer is added or removed, or calls :func:`changed`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .einfo import ExceptionInfo
    from .exceptions import Retry
    from .message import Message
    from .task import Task
    from .transport import Receipt
    from .worker.run import RunResult, TaskRun

__all__ = ["STEPS", "Layer", "Layers", "changed"]

#: Every step a layer can take part in, in the order they happen.
STEPS = ("before_send", "after_send", "received", "before_run", "succeeded", "retried",
         "failed", "after_run", "skipped")

# Bumped when a layer's wishes change (a signal got its first receiver, ...): each app's
# per-step lists are rebuilt on their next use.
_epoch = 0


def changed() -> None:
    """Tell every app's layers to ask :meth:`Layer.wants` again."""
    global _epoch
    _epoch += 1


class Layer:
    """One layer around sends and runs; every method does nothing unless overridden."""

    def wants(self, step: str) -> bool:
        """Whether this layer takes part in ``step`` now (by default: it overrides it)."""
        return getattr(type(self), step) is not getattr(Layer, step)

    def before_send(self, message: Message) -> Message | None:
        """A message is about to be handed to the transport; return a changed copy to send
        that instead (``dataclasses.replace(message, headers=...)``: a trace context, say),
        or ``None`` to send it as it is."""

    def after_send(self, message: Message, receipt: Receipt) -> None:
        """The transport took ``message``."""

    def received(self, run: TaskRun) -> None:
        """A delivery was admitted and is about to run."""

    def before_run(self, run: TaskRun) -> Awaitable[None] | None:
        """The run's request is pushed; the task body is next (``task_prerun``)."""

    def succeeded(self, run: TaskRun, retval: Any) -> Awaitable[None] | None:
        """The body returned ``retval``; callbacks were sent, ``on_success`` called."""

    def retried(self, run: TaskRun, retry: Retry,
                einfo: ExceptionInfo) -> Awaitable[None] | None:
        """The run ended in a retry (its new task was sent); ``on_retry`` was called."""

    def failed(self, run: TaskRun, exc: BaseException,
               einfo: ExceptionInfo) -> Awaitable[None] | None:
        """The body raised and no retry was made; ``on_failure`` was called."""

    def after_run(self, run: TaskRun, result: RunResult) -> None:
        """Every run ends here, whatever its outcome (``task_postrun``)."""

    def skipped(self, task: Task[..., Any], message: Message,
                reason: str) -> Awaitable[None] | None:
        """A delivery was not run: ``reason`` is ``"expired"`` (past its ``expires``) or
        ``"revoked"`` (``AsyncResult.revoke()``); may return an awaitable (a store's write),
        awaited before the delivery is answered."""


class Layers:
    """An app's layers, in order, with the callables of each step ready to call.

    ``steps`` maps each step to its callables while ``epoch`` is current; hot paths read
    them as ``layers.steps if layers.epoch == celery_gcp.layers._epoch else layers.refresh()``
    (no call on the way when nothing changed).
    """

    def __init__(self, layers: list[Layer] | None = None) -> None:
        self._layers: list[Layer] = list(layers or ())
        self.epoch = -1
        self.steps: dict[str, tuple[Callable[..., Any], ...]] = {}

    def add(self, layer: Layer) -> None:
        """Add ``layer`` after the others."""
        self._layers.append(layer)
        self.epoch = -1

    def remove(self, layer: Layer) -> None:
        """Remove ``layer``; ``ValueError`` if it is not there."""
        self._layers.remove(layer)
        self.epoch = -1

    def refresh(self) -> dict[str, tuple[Callable[..., Any], ...]]:
        """Ask every layer what it wants now; returns the new :attr:`steps`."""
        self.steps = {
            step: tuple(getattr(layer, step) for layer in self._layers if layer.wants(step))
            for step in STEPS}
        self.epoch = _epoch
        return self.steps

    def step(self, name: str) -> tuple[Callable[..., Any], ...]:
        """The callables of step ``name``, in layer order (empty when no layer wants it)."""
        steps = self.steps if self.epoch == _epoch else self.refresh()
        return steps[name]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __repr__(self) -> str:
        return f"<Layers: {', '.join(type(layer).__name__ for layer in self._layers)}>"

