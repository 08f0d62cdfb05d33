"""Task routing as Celery does it (``task_routes``); Celery queue names -> Cloud Tasks queue ids.

``task_routes`` may be a dict (exact names, glob patterns, compiled regexes as keys; values a
queue name or ``{"queue": name}``), a router function ``(name, args, kwargs, options, task=None,
**kw) -> str | dict | None``, an importable ``"module.function"`` name, or a list of these.
Routers are tried in order and the first answer wins; a ``queue`` given explicitly to
``apply_async`` (or set on the task) wins over all of them; otherwise ``task_default_queue``.
An answer may also be a ``Queue`` (``celery_gcp.kombu``), or name a ``routing_key`` and
``exchange`` instead of a queue: the queue of ``task_queues`` those reach
(:mod:`celery_gcp.queue_bindings`), or an error, never the default queue.

Cloud Tasks queue ids allow only ``[A-Za-z0-9-]``, at most 100 characters. The one rule:
every other character becomes ``-``, so Celery's ``high_priority`` is the queue ``high-priority``.
"""

from __future__ import annotations

import fnmatch
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .exceptions import ImproperlyConfigured
from .queue_bindings import Bindings
from .utils.functional import maybe_list
from .utils.imports import import_object

__all__ = ["QueueRouter", "queue_id"]

RouterFunction = Callable[..., Any]
_INVALID_QUEUE_CHARS = re.compile(r"[^A-Za-z0-9-]")
_QUEUE_ID_MAX = 100


def queue_id(name: str) -> str:
    """Map a Celery queue name to a valid Cloud Tasks queue id.

    >>> queue_id("high_priority")
    'high-priority'
    """
    mapped = _INVALID_QUEUE_CHARS.sub("-", name)
    if not mapped or len(mapped) > _QUEUE_ID_MAX:
        raise ImproperlyConfigured(
            f"queue name {name!r} cannot be a Cloud Tasks queue id (1 to {_QUEUE_ID_MAX} "
            "characters of [A-Za-z0-9-]); choose a shorter name in task_routes or queue="
        )
    return mapped


class QueueRouter:
    """Resolves the queue for a task call from ``task_routes`` and ``task_default_queue``."""

    def __init__(self, routes: Any, default_queue: str, bindings: Bindings | None = None) -> None:
        self.default_queue = default_queue
        #: ``task_queues``: the declared queues, matched by routing key and exchange.
        self.bindings = bindings or Bindings()
        self.routers = [_compile(r) for r in maybe_list(routes)]
        #: Whether the queue of a call depends on the task name alone (no router functions).
        self.static = all(isinstance(r, _MapRouter) for r in self.routers)
        self._names_by_id: dict[str, str] = {}

    def queue_id(self, name: str) -> str:
        """The Cloud Tasks queue id of queue ``name``, refusing two names that share one id.

        ``high_priority`` and ``high.priority`` would both be ``high-priority``: silently
        merging two queues would merge their rate limits, so the second name is an error.
        """
        mapped = queue_id(name)
        other = self._names_by_id.setdefault(mapped, name)
        if other != name:
            raise ImproperlyConfigured(
                f"queues {other!r} and {name!r} both map to the Cloud Tasks queue id "
                f"{mapped!r}; rename one of them"
            )
        return mapped

    def route(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        task: Any = None,
    ) -> str:
        """Return the queue name for a call of task ``name``."""
        options = options or {}
        explicit = options.get("queue")
        if explicit:
            return _queue_name(explicit)
        for router in self.routers:
            answer = router(name, args, kwargs or {}, options, task=task)
            if answer:
                if (isinstance(answer, Mapping) and not answer.get("queue")
                        and ("routing_key" in answer or "exchange" in answer)):
                    return self.bindings.queue_for(answer, name)
                return _queue_name(answer)
        return self.default_queue



def _compile(router: Any) -> RouterFunction:
    if isinstance(router, str):
        try:
            router = import_object(router)
        except ImportError as exc:
            raise ImproperlyConfigured(f"cannot import router {router!r}: {exc}") from exc
    if isinstance(router, Mapping):
        return _MapRouter(router)
    if callable(router):
        return _call_router(router)
    raise ImproperlyConfigured(
        f"task_routes entry {router!r} is neither a dict, a function nor an importable name"
    )


def _call_router(fun: RouterFunction) -> RouterFunction:
    params = inspect.signature(fun).parameters
    if "task" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fun

    # Older routers take (name, args, kwargs, options) only.
    def call(name: str, args: Any, kwargs: Any, options: Any, task: Any = None) -> Any:
        return fun(name, args, kwargs, options)

    return call


class _MapRouter:
    def __init__(self, routes: Mapping[Any, Any]) -> None:
        self.exact: dict[str, Any] = {}
        self.patterns: list[tuple[re.Pattern[str], Any]] = []
        for key, value in routes.items():
            if isinstance(key, re.Pattern):
                self.patterns.append((key, value))
            elif isinstance(key, str) and any(c in key for c in "*?["):
                self.patterns.append((re.compile(fnmatch.translate(key)), value))
            else:
                self.exact[key] = value

    def __call__(self, name: str, args: Any, kwargs: Any, options: Any, task: Any = None) -> Any:
        if name in self.exact:
            return self.exact[name]
        for pattern, value in self.patterns:
            if pattern.match(name):
                return value
        return None


def _queue_name(answer: Any) -> str:
    if isinstance(answer, str):
        return answer
    if isinstance(answer, Mapping) and answer.get("queue"):
        return _queue_name(answer["queue"])
    if hasattr(answer, "name") and isinstance(answer.name, str):  # a Queue (celery_gcp.kombu)
        return str(answer.name)
    raise ImproperlyConfigured(
        f"route {answer!r} names no queue; routes must give a queue name, a Queue, "
        "{'queue': name} or a routing_key that a queue of task_queues is bound with"
    )
