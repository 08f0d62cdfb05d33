"""``task_queues``: the queues an app declares, and the queue a routing key reaches.

Celery users route either by queue (``{"queue": "feeds"}``) or, as on an AMQP broker, by
exchange and routing key (``{"exchange": "media", "routing_key": "media.video"}``), which the
broker matches against the bindings of the declared queues. There is no broker here, so the
match is made at the call site, by the broker's rules: a ``direct`` exchange matches the same
key, ``topic`` matches ``*`` (one word) and ``#`` (any words) patterns, ``fanout`` any key. A
queue's binding is its exchange (``task_default_exchange``, else ``task_default_queue``, when
it names none) and its routing key (its name when it has none). A route that names no
exchange is matched by key against the direct and topic bindings of every exchange.

A route must reach exactly one queue: none (the broker would drop the message) or several (it
would copy it to each; Cloud Tasks sends one task to one queue) raise
:class:`~celery_gcp.exceptions.ImproperlyConfigured` naming the declared bindings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .exceptions import ImproperlyConfigured

__all__ = ["Bindings"]


@dataclass(frozen=True)
class _Binding:
    queue: str
    exchange: str
    type: str
    key: str

    def matches(self, key: str) -> bool:
        if self.type == "fanout":
            return True
        if self.type == "topic":
            return _topic_match(self.key.split("."), key.split("."))
        return self.key == key


class Bindings:
    """The queues of ``task_queues`` (a list of ``Queue``, or a dict of name -> ``Queue`` or
    options) and their bindings."""

    def __init__(self, queues: Any = None, default_exchange: str = "celery",
                 default_type: str = "direct") -> None:
        self.names: list[str] = []
        self._bindings: list[_Binding] = []
        for name, queue in _entries(queues):
            self.names.append(name)
            self._bindings.extend(_bindings_of(name, queue, default_exchange, default_type))

    @classmethod
    def from_settings(cls, conf: Mapping[str, Any]) -> Bindings:
        """The bindings of ``conf``'s ``task_queues``, with its default exchange."""
        return cls(conf.get("task_queues"),
                   conf.get("task_default_exchange") or conf.get("task_default_queue")
                   or "celery",
                   conf.get("task_default_exchange_type") or "direct")

    def queue_for(self, route: Mapping[str, Any], task: str) -> str:
        """The one queue that ``route`` (with ``routing_key`` / ``exchange``, no ``queue``)
        reaches; raises :class:`ImproperlyConfigured` when it reaches none or several."""
        exchange = _name(route.get("exchange"))
        key = route.get("routing_key")
        where = (f"task_routes sends {task!r} with routing_key={key!r}"
                 + (f" on exchange {exchange!r}" if exchange else ""))
        if not self._bindings:
            raise ImproperlyConfigured(
                f"{where}, but task_queues declares no queues to match it against: declare "
                "them (task_queues = [Queue(name, exchange, routing_key=...)], from "
                "celery_gcp.kombu) or route by queue ({'queue': name})")
        # A route without an exchange matches by key (a fanout exchange must be named).
        candidates = [b for b in self._bindings if b.exchange == exchange
                      or (exchange is None and b.type != "fanout")]
        if key is None:
            candidates = [b for b in candidates if b.type == "fanout"]
        else:
            candidates = [b for b in candidates if b.matches(str(key))]
        reached = sorted({b.queue for b in candidates})
        if len(reached) == 1:
            return reached[0]
        known = "; ".join(f"{b.queue} <- {b.exchange}({b.type}) {b.key!r}"
                          for b in self._bindings)
        if not reached:
            raise ImproperlyConfigured(
                f"{where}, which reaches no queue of task_queues (a broker would drop the "
                f"message); the bindings are: {known}. Fix the key or route by queue "
                "({'queue': name})")
        raise ImproperlyConfigured(
            f"{where}, which reaches the queues {', '.join(reached)} (a broker would copy "
            "the message to each; Cloud Tasks sends one task to one queue): route by queue "
            "({'queue': name}) or narrow the bindings")


def _entries(queues: Any) -> list[tuple[str, Any]]:
    if not queues:
        return []
    if isinstance(queues, Mapping):
        return [(str(name), queue) for name, queue in queues.items()]
    out = []
    for queue in queues if isinstance(queues, Sequence | set | frozenset) else [queues]:
        name = queue.get("name") if isinstance(queue, Mapping) else getattr(queue, "name", None)
        if not isinstance(name, str) or not name:
            raise ImproperlyConfigured(
                f"task_queues entry {queue!r} has no name: give Queue(name, ...) objects "
                "(celery_gcp.kombu) or a dict of name -> options")
        out.append((name, queue))
    return out


def _bindings_of(name: str, queue: Any, default_exchange: str,
                 default_type: str) -> list[_Binding]:
    def get(key: str) -> Any:
        return queue.get(key) if isinstance(queue, Mapping) else getattr(queue, key, None)

    rows = [(get("exchange"), get("routing_key") or get("binding_key"))]
    rows += [(getattr(b, "exchange", None), getattr(b, "routing_key", None))
             for b in get("bindings") or ()]
    if len(rows) > 1 and rows[0] == (None, None):
        rows = rows[1:]  # Queue(name, [binding(...), ...]): only its bindings
    out = []
    for exchange, key in rows:
        kind = getattr(exchange, "type", None) or get("exchange_type") or default_type
        out.append(_Binding(name, _name(exchange) or default_exchange, str(kind),
                            str(key or name)))
    return out


def _name(exchange: Any) -> str | None:
    if exchange is None or isinstance(exchange, str):
        return exchange or None
    found = getattr(exchange, "name", None)
    return found if isinstance(found, str) and found else None


def _topic_match(pattern: Sequence[str], words: Sequence[str]) -> bool:
    """AMQP topic matching: ``*`` is one word, ``#`` zero or more."""
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_topic_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _topic_match(rest, words[1:])
