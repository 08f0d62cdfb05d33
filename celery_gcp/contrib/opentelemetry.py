"""OpenTelemetry spans for sends and runs (``pip install 'celery-gcp[otel]'``).

:func:`instrument` adds a layer to an app that makes, as opentelemetry-instrumentation-celery
does for Celery:

* a **producer** span ``apply_async/<task name>`` for each send, whose context travels on the
  task's HTTP request (``traceparent``, through the global propagator);
* a **consumer** span ``run/<task name>`` for each run, a child of the current span (FastAPI's
  server span, when FastAPI is instrumented too) or else of the producer's context read from
  the request, and linked to the producer span; the run's exception is recorded on it.

Both carry ``celery.action``, ``celery.task_name``, ``messaging.message.id``,
``messaging.destination`` (the queue) and ``celery.retries``; the consumer span also
``celery.state`` (the run's outcome). What a task sends while it runs (other tasks, its
retries, the next chain step, a chord's body) is a child of its consumer span.

Example::

    from celery_gcp.contrib.opentelemetry import instrument

    instrument(app)                          # spans through the global tracer provider
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from ..layers import Layer
from ..worker.outcomes import Outcome

if TYPE_CHECKING:
    from ..app import Celery
    from ..einfo import ExceptionInfo
    from ..message import Message
    from ..transport import Receipt
    from ..worker.run import RunResult, TaskRun

__all__ = ["OpenTelemetryLayer", "instrument", "uninstrument"]

# Producer spans whose send has not returned yet, by message id; a send that raised leaves
# its span here, so the oldest are dropped past this many.
_OPEN_LIMIT = 1024
_RUN_KEY = "_celery_gcp_otel"


class OpenTelemetryLayer(Layer):
    """The layer :func:`instrument` adds (see the module docstring)."""

    def __init__(self, tracer_provider: Any = None) -> None:
        from .. import __version__

        self.tracer = trace.get_tracer("celery_gcp", __version__,
                                       tracer_provider=tracer_provider)
        self._producing: OrderedDict[str, Any] = OrderedDict()

    # -- sends -----------------------------------------------------------------------------

    def before_send(self, message: Message) -> Message:
        """Start the producer span; the message carries its context."""
        span = self.tracer.start_span(
            f"apply_async/{message.task}", kind=SpanKind.PRODUCER,
            attributes=_attributes("apply_async", message))
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        self._producing[message.id] = span
        while len(self._producing) > _OPEN_LIMIT:
            self._producing.popitem(last=False)
        return dataclasses.replace(message, trace=carrier)

    def after_send(self, message: Message, receipt: Receipt) -> None:
        """End the producer span."""
        span = self._producing.pop(message.id, None)
        if span is not None:
            span.end()

    # -- runs ------------------------------------------------------------------------------

    def before_run(self, run: TaskRun) -> None:
        """Start the consumer span and make it current for the run."""
        message = run.message
        sent = propagate.extract(dict(message.trace)) if message.trace else None
        producer = trace.get_current_span(sent).get_span_context() if sent else None
        current = trace.get_current_span().get_span_context()
        parent = None if current.is_valid else sent
        links = [Link(producer)] if producer is not None and producer.is_valid else []
        span = self.tracer.start_span(
            f"run/{message.task}", context=parent, kind=SpanKind.CONSUMER, links=links,
            attributes=_attributes("run", message))
        token = otel_context.attach(trace.set_span_in_context(span))
        setattr(run, _RUN_KEY, (span, token))

    def failed(self, run: TaskRun, exc: BaseException, einfo: ExceptionInfo) -> None:
        """Record the run's exception on its span."""
        found = getattr(run, _RUN_KEY, None)
        if found is not None:
            found[0].record_exception(exc)

    def after_run(self, run: TaskRun, result: RunResult) -> None:
        """End the consumer span with the run's outcome."""
        found = getattr(run, _RUN_KEY, None)
        if found is None:
            return
        span, token = found
        span.set_attribute("celery.state", result.state)
        if result.outcome in (Outcome.FAILURE, Outcome.REDELIVER):
            span.set_status(Status(StatusCode.ERROR, repr(result.retval)[:200]))
        otel_context.detach(token)
        span.end()


def _attributes(action: str, message: Message) -> dict[str, Any]:
    return {"celery.action": action, "celery.task_name": message.task,
            "messaging.message.id": message.id, "messaging.destination": message.queue or "",
            "celery.retries": message.retries}


def instrument(app: Celery, tracer_provider: Any = None) -> OpenTelemetryLayer:
    """Add the OpenTelemetry layer to ``app`` (once); returns it."""
    for layer in app.layers:
        if isinstance(layer, OpenTelemetryLayer):
            return layer
    layer = OpenTelemetryLayer(tracer_provider)
    app.layers.add(layer)
    return layer


def uninstrument(app: Celery) -> None:
    """Remove the OpenTelemetry layer from ``app``."""
    for layer in list(app.layers):
        if isinstance(layer, OpenTelemetryLayer):
            app.layers.remove(layer)
