"""The checks of a call at the call site, before anything travels: its options (those the
send path handles; those with no meaning on Cloud Tasks, each warned about once per app at the
caller's line), its links and headers (plain JSON, as the worker reads them), and the body of
``send_task`` for a task not registered here.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .exceptions import CeleryGcpWarning, TaskArgumentError

if TYPE_CHECKING:
    from .app import Celery

__all__ = ["warn_once"]

# Options the send path handles. ``retry``/``retry_policy`` govern the transport's own
# retries of a failed send; a per-call ``ignore_result`` travels in the message's headers
# (``message.IGNORE_RESULT``) and overrides the task's for that run.
_HANDLED = frozenset({
    "task_id", "countdown", "eta", "expires", "queue", "headers", "link", "link_error",
    "retry", "retry_policy", "root_id", "parent_id", "retries", "ignore_result",
    "serializer", "add_to_parent", "on_duplicate",
})
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


# Frames from a Sender method up to the code that called apply_async.
_CALLER = 5


def warn_once(app: Celery, key: str, text: str, stacklevel: int = 2,
              category: type[Warning] = CeleryGcpWarning) -> None:
    """Warn about ``key`` the first time this app sees it (``stacklevel`` as for the caller)."""
    if key not in app._warned:
        app._warned.add(key)
        warnings.warn(text, category, stacklevel=stacklevel + 1)

def _outside_package() -> int:
    """The ``stacklevel`` for :func:`warn_once`, called by this function's caller, that
    points at the first frame outside celery_gcp: the user's call, whichever path (delay, a
    canvas, a route) led here."""
    import sys

    package = os.path.dirname(__file__) + os.sep
    frame, level = sys._getframe(2), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


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


def _signatures(option: str, value: Any) -> tuple[Mapping[str, Any], ...]:
    from .canvas import Signature  # loaded with the tasks; only calls with links

    items = list(value) if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("task"), str):
            raise TaskArgumentError(f"{option}= takes signatures (task.s(...)), got {item!r}")
        # Rebuilt from its dict as the worker will (a chain's or group's members too; a
        # chord's refusal without a result store happens here, at the call site).
        Signature.from_dict(item)
        out.append(_plain(option, item))
    return tuple(out)


def _json_object(option: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TaskArgumentError(f"{option}= must be a dict, got {value!r}")
    _check_json(option, value)
    return dict(value)


def _check_json(option: str, value: Any) -> None:
    _plain(option, value)


def _plain(option: str, value: Any) -> Any:
    """``value`` as the worker will read it (plain JSON: a copy, tuples become lists)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise TaskArgumentError(
            f"{option}= must be plain JSON to travel in a header: {exc}"
        ) from None
