"""kombu's queue declarations, for ``task_queues``: ``from kombu import Queue, Exchange``
becomes ``from celery_gcp.kombu import Queue, Exchange``.

There is no broker here: a :class:`Queue` in ``task_queues`` is a Cloud Tasks queue of that
name, and its exchange and routing key are its bindings, which ``task_routes`` entries that
name a ``routing_key`` (and ``exchange``) instead of a queue are matched against, as a broker
would (``direct``: the same key; ``topic``: ``*`` / ``#`` patterns; ``fanout``: any key).
Broker options (``durable``, ``queue_arguments``, ``max_priority``, ...) are accepted and kept
in ``options``; they have no effect. ``celery_gcp.kombu.exceptions.OperationalError`` is the
error a failed send raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Exchange", "Queue", "binding"]


class Exchange:
    """An exchange: a name and a type (``direct``, ``topic`` or ``fanout``)."""

    def __init__(self, name: str = "", type: str = "direct", channel: Any = None,
                 **kwargs: Any) -> None:
        self.name = name
        self.type = type or "direct"
        self.options = kwargs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Exchange):
            return NotImplemented
        return (self.name, self.type) == (other.name, other.type)

    def __hash__(self) -> int:
        return hash(("Exchange", self.name))

    def __repr__(self) -> str:
        return f"<Exchange {self.name!r}({self.type})>"


class binding:  # kombu's name, lower-case
    """One binding of a queue: ``Queue("q", [binding(exchange, routing_key="a.#"), ...])``."""

    def __init__(self, exchange: Exchange | str | None = None, routing_key: str = "",
                 arguments: Any = None, unbind_arguments: Any = None) -> None:
        self.exchange = Exchange(exchange) if isinstance(exchange, str) else exchange
        self.routing_key = routing_key

    def __repr__(self) -> str:
        return f"<binding: {self.exchange!r} -> {self.routing_key!r}>"


class Queue:
    """A queue declaration of ``task_queues``: its name is the Cloud Tasks queue's name."""

    def __init__(self, name: str = "", exchange: Exchange | str | Iterable[binding] | None = None,
                 routing_key: str = "", channel: Any = None,
                 bindings: Iterable[binding] | None = None, on_declared: Any = None,
                 **kwargs: Any) -> None:
        self.name = name
        self.bindings = list(bindings or [])
        self.exchange: Exchange | None
        if isinstance(exchange, str):
            self.exchange = Exchange(exchange)
        elif exchange is None or isinstance(exchange, Exchange):
            self.exchange = exchange
        else:  # Queue("q", [binding(...), ...]), as kombu allows
            self.bindings.extend(exchange)
            self.exchange = None
        self.routing_key = routing_key
        self.options = kwargs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Queue):
            return NotImplemented
        return (self.name, self.exchange, self.routing_key) == (
            other.name, other.exchange, other.routing_key)

    def __hash__(self) -> int:
        return hash(("Queue", self.name))

    def __repr__(self) -> str:
        return f"<Queue {self.name} -> {self.exchange!r} -> {self.routing_key}>"
