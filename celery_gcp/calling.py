"""The send path shared by ``delay``, ``apply_async``, ``send_task``, signatures and retries.

:func:`build_message` turns a call into a :class:`Message` (ids, ETA, expiry, links, headers,
queue); :func:`publish` fires the publish signals around the transport's ``send``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import signals
from .exceptions import CeleryGcpWarning, TaskArgumentError
from .message import Message
from .request import current_request
from .transport.base import SendOptions

if TYPE_CHECKING:
    from .app import Celery
    from .task import Task
    from .transport import Receipt, Transport

__all__ = ["asend", "build_message", "new_id", "publish", "publish_async", "publish_many", "send",
           "send_options"]

# Options that steer the send here. ``retry``/``retry_policy`` govern the transport's own
# retries of a failed send; ``ignore_result`` has no effect without a result store.
_HANDLED = frozenset({
    "task_id", "countdown", "eta", "expires", "queue", "headers", "link", "link_error",
    "retry", "retry_policy", "root_id", "parent_id", "retries", "ignore_result",
    "serializer", "add_to_parent", "on_duplicate",
})
_SEND_KEYS = frozenset({"retry", "retry_policy", "on_duplicate"})
# Celery options with no meaning on Cloud Tasks: accepted, with a one-time warning.
_NO_MEANING = {
    "priority": "Cloud Tasks has no message priorities; route urgent tasks to their own queue",
    "exchange": "there are no AMQP exchanges",
    "exchange_type": "there are no AMQP exchanges",
    "routing_key": "there are no AMQP routing keys; use queue=",
    "compression": "bodies are sent as plain JSON",
    "delivery_mode": "Cloud Tasks always persists tasks",
    "mandatory": "there is no AMQP broker",
    "immediate": "there is no AMQP broker",
    "reply_to": "there is no reply queue",
    "producer": "there is no broker producer",
    "connection": "there is no broker connection",
    "publisher": "there is no broker publisher",
    "shadow": "the task name is the endpoint path",
    "time_limit": "set time_limit on the task; per-call limits are not supported",
    "soft_time_limit": "Cloud Tasks has no soft time limit",
    "expiration": "use expires=",
    "group_id": "groups are sent as independent tasks",
    "group_index": "groups are sent as independent tasks",
    "chord": "chords are not supported",
    "stamped_headers": "stamping is not supported",
}


# Frames from _warn_ignored up to the code that called apply_async.
_CALLER = 5


def warn_once(app: Celery, key: str, text: str, stacklevel: int = 2,
              category: type[Warning] = CeleryGcpWarning) -> None:
    """Warn about ``key`` the first time this app sees it (``stacklevel`` as for the caller)."""
    if key not in app._warned:
        app._warned.add(key)
        warnings.warn(text, category, stacklevel=stacklevel + 1)


def build_message(
    app: Celery,
    name: str,
    task: Task[Any, Any] | None,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    options: Mapping[str, Any],
    *,
    route: bool = True,
) -> Message:
    """Bind, validate and encode one call of task ``name``; raises :class:`TaskArgumentError`."""
    args = tuple(args or ())
    kwargs = dict(kwargs or {})
    target = None
    if task is not None:
        body, target = task.encode_call(args, kwargs)
    else:
        body = _unbound_body(name, args, kwargs)
    if options and (not _HANDLED.issuperset(options)
                    or options.get("serializer", "json") != "json"):
        _warn_ignored(app, options)
    countdown = options.get("countdown")
    eta = options.get("eta")
    if countdown:  # as Celery: a non-zero countdown wins over eta
        eta = app.now() + timedelta(seconds=float(countdown))
    elif eta is not None:
        eta = app.aware(_datetime("eta", eta))
    expires = options.get("expires")
    if isinstance(expires, int | float) and not isinstance(expires, bool):
        expires = app.now() + timedelta(seconds=float(expires))
    elif expires is not None:
        expires = app.aware(_datetime("expires", expires))
    task_id = options.get("task_id") or new_id()
    parent = current_request()
    parent_id = options.get("parent_id")
    root_id = options.get("root_id")
    # A task sent from a running task is its child; a retry (same id) keeps its own parent.
    if parent is not None and parent_id is None and parent.id != task_id:
        parent_id = parent.id
        root_id = root_id or parent.root_id or parent.id
    queue = app.queue_router.route(name, args, kwargs, options, task) \
        if route else options.get("queue")
    return Message(
        task=name,
        id=str(task_id),
        body=body,
        retries=int(options.get("retries") or 0),
        queue=queue,
        eta=eta,
        expires=expires,
        root_id=root_id or str(task_id),
        parent_id=parent_id,
        link=_signatures("link", options.get("link")),
        link_error=_signatures("link_error", options.get("link_error")),
        headers=_json_object("headers", options.get("headers")),
        target=target,
    )


def new_id() -> str:
    """A random (version 4) UUID string, the default task id; faster than ``uuid.uuid4()``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _warn_ignored(app: Celery, options: Mapping[str, Any]) -> None:
    for key in options.keys() - _HANDLED:
        reason = _NO_MEANING.get(key)
        if reason is not None:
            warn_once(app, key, f"apply_async option {key!r} is ignored: {reason}", _CALLER)
        else:
            warn_once(app, key, f"unknown apply_async option {key!r} is ignored", _CALLER)
    serializer = options.get("serializer")
    if serializer not in (None, "json"):
        warn_once(app, "serializer", f"serializer={serializer!r} is ignored: bodies are JSON",
                  _CALLER)


def send_options(options: Mapping[str, Any]) -> SendOptions | None:
    """The transport-level options of an ``apply_async`` call (``None``: the defaults)."""
    if not (options.keys() & _SEND_KEYS):
        return None
    on_duplicate = options.get("on_duplicate", "raise")
    if on_duplicate not in ("raise", "ignore"):
        raise TaskArgumentError(f"on_duplicate={on_duplicate!r}: use 'raise' or 'ignore'")
    return SendOptions(retry=bool(options.get("retry", True)),
                       retry_policy=options.get("retry_policy"), on_duplicate=on_duplicate)


def publish_many(app: Celery, messages: Sequence[Message],
                 options: SendOptions | None = None) -> list[Receipt | Exception]:
    """Send many messages in one bulk send; each slot holds a receipt or its error."""
    for message in messages:
        _before_publish(message)
    outcomes = app.transport.send_many(messages, options)
    for message, outcome in zip(messages, outcomes, strict=True):
        if not isinstance(outcome, Exception):
            _after_publish(message)
    return outcomes


def publish(app: Celery, message: Message, options: SendOptions | None = None) -> Receipt:
    """Send ``message`` through the app's transport, firing the publish signals."""
    return send(app.transport, message, options)


async def publish_async(app: Celery, message: Message,
                        options: SendOptions | None = None) -> Receipt:
    """Async :func:`publish`."""
    return await asend(app.transport, message, options)


def send(transport: Transport, message: Message, options: SendOptions | None = None) -> Receipt:
    """Send ``message`` through ``transport``, firing the publish signals."""
    _before_publish(message)
    receipt = transport.send(message, options)
    _after_publish(message)
    return receipt


async def asend(transport: Transport, message: Message,
                options: SendOptions | None = None) -> Receipt:
    """Async :func:`send`."""
    _before_publish(message)
    receipt = await transport.asend(message, options)
    _after_publish(message)
    return receipt


def _protocol_headers(message: Message) -> dict[str, Any]:
    return {
        "id": message.id, "task": message.task, "retries": message.retries,
        "eta": message.eta and message.eta.isoformat(),
        "expires": message.expires and message.expires.isoformat(),
        "root_id": message.root_id, "parent_id": message.parent_id,
        **message.headers,
    }


def _before_publish(message: Message) -> None:
    if signals.before_task_publish.receivers:
        signals.before_task_publish.send(
            sender=message.task, body=message.body, exchange="", routing_key=message.queue,
            headers=_protocol_headers(message), properties={}, declare=[], retry_policy=None,
        )


def _after_publish(message: Message) -> None:
    if signals.after_task_publish.receivers:
        signals.after_task_publish.send(
            sender=message.task, body=message.body, exchange="", routing_key=message.queue,
            headers=_protocol_headers(message),
        )


def _unbound_body(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    if args:
        raise TaskArgumentError(
            f"send_task({name!r}) got positional arguments, but {name!r} is not registered in "
            "this process, so they cannot be bound to parameter names. Pass kwargs= instead, "
            "or import the module that defines the task."
        )
    try:
        return json.dumps(kwargs, separators=(",", ":"), allow_nan=True).encode()
    except (TypeError, ValueError) as exc:
        raise TaskArgumentError(f"send_task({name!r}): kwargs are not plain JSON: {exc}") from None


def _datetime(option: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise TaskArgumentError(f"{option}= must be a datetime or an ISO 8601 string, got {value!r}")


def _signatures(option: str, value: Any) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    items = list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("task"), str):
            raise TaskArgumentError(f"{option}= takes signatures (task.s(...)), got {item!r}")
        _check_json(option, item)
    return tuple(dict(item) for item in items)


def _json_object(option: str, value: Any) -> Mapping[str, Any]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise TaskArgumentError(f"{option}= must be a dict, got {value!r}")
    _check_json(option, value)
    return dict(value)


def _check_json(option: str, value: Any) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TaskArgumentError(
            f"{option}= must be plain JSON to travel in a header: {exc}"
        ) from None
