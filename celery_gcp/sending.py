"""The send path: every call of a task or a route becomes a :class:`Message` here, once.

``delay``, ``apply_async``, ``send_task``, signatures, groups, retries, beat fires, relay hops,
``app.TaskRoute`` routes and the route builders of :mod:`celery_gcp.fastapi` all go through it::

    call ── compose ──> Message ── address ──> Message + Destination ── layers ──> transport
          (bind, validate,         (queue path, URL, deadline,     (before_send,   (I/O only)
           ids, ETA, expiry,        OIDC identity and audience)      after_send)
           parent/root, links)

:func:`compose` builds a message from an encoded call; an app's :class:`Sender`
(``app.sender``) binds and routes the call, addresses the message from the app's settings
(resolved once per version of the settings, then cached per task and queue) and hands it to
the app's transport between its layers (:mod:`celery_gcp.layers`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from . import layers as _layers
from . import tracing
from .call_checks import (
    _HANDLED,
    _json_object,
    _outside_package,
    _signatures,
    _unbound_body,
    _warn_ignored,
    warn_once,
)
from .context import _stack
from .exceptions import TaskArgumentError
from .message import IGNORE_RESULT, Destination, HttpTarget, Message, checked_id, new_id
from .transport.base import SendOptions

if TYPE_CHECKING:
    from .app import Celery
    from .config import Settings
    from .layers import Layers
    from .queue_routing import QueueRouter
    from .task import Task
    from .transport import Receipt, Transport

__all__ = ["Sender", "asend", "compose", "new_id", "send", "send_options", "warn_once"]

# The options of the transport's own send (call_checks.py has the others).
_SEND_KEYS = frozenset({"retry", "retry_policy", "on_duplicate"})


def _warn_unsigned(app: Celery, settings: Settings) -> None:
    """Once per app: tasks sent with no OIDC token while callers are verified (the default)
    would be refused by the worker (401) on every attempt until Cloud Tasks gives up."""
    if str(settings.task_auth or "oidc").lower() != "oidc":
        return
    warn_once(app, "unsigned-tasks", (
        "gcp_service_account is not set, so tasks are created without an OIDC token, and "
        "with task_auth='oidc' (the default) a worker refuses each of them (401) until Cloud "
        "Tasks stops retrying: set gcp_service_account (or CELERY_GCP_SERVICE_ACCOUNT) to the "
        "service account Cloud Tasks signs as (it needs roles/iam.serviceAccountUser), or "
        "task_auth='none' where only a private network reaches the worker"),
        stacklevel=_outside_package())


def compose(name: str, body: bytes, options: Mapping[str, Any], *,
            target: HttpTarget | None = None, queue: str | None = None,
            now: Any = None, zone: tzinfo = UTC,
            destination: Destination | None = None) -> Message:
    """The message of one encoded call of ``name``: id, ETA, expiry, parent and root ids (a
    call made inside a running task is its child), retries, links and custom headers.

    ``now`` is a function giving the current time (the app's clock); naive datetimes are
    read in ``zone``. Raises :class:`TaskArgumentError` for options that cannot travel.
    """
    eta = options.get("eta")
    countdown = options.get("countdown")
    expires = options.get("expires")
    if countdown:  # as Celery: a non-zero countdown wins over eta
        eta = (now or _utcnow)() + timedelta(seconds=float(countdown))
    elif eta is not None:
        eta = _aware(_datetime("eta", eta), zone)
    if isinstance(expires, int | float) and not isinstance(expires, bool):
        expires = (now or _utcnow)() + timedelta(seconds=float(expires))
    elif expires is not None:
        expires = _aware(_datetime("expires", expires), zone)
    task_id = options.get("task_id")
    task_id = checked_id(str(task_id)) if task_id else new_id()
    parent_id = options.get("parent_id")
    root_id = options.get("root_id")
    if parent_id is None:
        # A task sent from a running task is its child; a retry (same id) keeps its parent.
        for _owner, request in reversed(_stack.get()):
            if not request.called_directly:
                if request.id != task_id:
                    parent_id = request.id
                    root_id = root_id or request.root_id or request.id
                break
    link = options.get("link")
    link_error = options.get("link_error")
    raw_headers = options.get("headers")
    headers = _json_object("headers", raw_headers) if raw_headers else {}
    ignore_result = options.get("ignore_result")
    if ignore_result is not None:
        headers = {**headers, IGNORE_RESULT: bool(ignore_result)}
    # Inline for a warm send: OpenTelemetry's span is only looked at once its SDK is loaded,
    # and read in full only when valid.
    otel = (sys.modules.get("opentelemetry.trace") if tracing.OPENTELEMETRY in sys.modules
            else None)
    trace = (tracing.current()
             if otel is not None and otel.get_current_span().get_span_context().is_valid
             else tracing.request_trace.get())
    return Message(
        task=name, id=task_id, body=body, retries=int(options.get("retries") or 0),
        queue=queue, eta=eta, expires=expires, root_id=root_id or task_id,
        parent_id=parent_id,
        link=_signatures("link", link) if link is not None else (),
        link_error=_signatures("link_error", link_error) if link_error is not None else (),
        headers=headers,
        target=target, destination=destination,
        trace=trace.headers() if trace is not None else {},
    )


def send_options(options: Mapping[str, Any]) -> SendOptions | None:
    """The transport-level options of an ``apply_async`` call (``None``: the defaults)."""
    if not (options.keys() & _SEND_KEYS):
        return None
    on_duplicate = options.get("on_duplicate", "raise")
    if on_duplicate not in ("raise", "ignore"):
        raise TaskArgumentError(f"on_duplicate={on_duplicate!r}: use 'raise' or 'ignore'")
    return SendOptions(retry=bool(options.get("retry", True)),
                       retry_policy=options.get("retry_policy"), on_duplicate=on_duplicate)


class Sender:
    """The send path of one app (``app.sender``): binds, routes, composes, addresses and
    sends, reading the app's settings once per version of them."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._settings: Settings | None = None
        self._version = -1
        self._eager = False
        self._router: QueueRouter | None = None
        self._queues: dict[str, str] | None = None  # task -> queue, for static task_routes
        self._addresses: dict[tuple[str, str | None], Destination] = {}
        self._paths: dict[str | None, str] = {}

    def _refresh(self) -> Settings:
        """Re-read the settings the send path uses (when they changed)."""
        app = self.app
        settings = app._conf or app._load_conf()
        self._settings, self._version = settings, settings.version
        self._eager = bool(settings.task_always_eager)
        self._router = router = app.queue_router
        self._queues = {} if router.static else None
        self._addresses, self._paths = {}, {}
        return settings

    def _current(self) -> Settings:
        """The app's settings, after re-reading what the send path uses if they changed."""
        settings = self._settings
        if settings is None or settings.version != self._version:
            return self._refresh()
        return settings

    def eager(self) -> bool:
        """Whether calls run here (``task_always_eager``)."""
        self._current()
        return self._eager

    # -- building --------------------------------------------------------------------------

    def message(self, name: str, task: Task[Any, Any] | None, args: Sequence[Any] | None,
                kwargs: Mapping[str, Any] | None, options: Mapping[str, Any], *,
                route: bool = True) -> Message:
        """Bind, validate, encode and route one call of task ``name``, and address it for the
        app's transport (``route=False``: neither, for a run here); raises
        :class:`TaskArgumentError` for a call the worker would reject."""
        settings = self._current()  # the queue router and caches of the settings as they are now
        args = tuple(args or ())
        kwargs = dict(kwargs or {})
        target = None
        if task is not None:
            body, target = task.encode_call(args, kwargs)
        else:
            body = _unbound_body(name, args, kwargs)
        if options and (not _HANDLED.issuperset(options)
                        or options.get("serializer", "json") != "json"):
            _warn_ignored(self.app, options)
        queue = self._queue(name, args, kwargs, options, task) if route else options.get("queue")
        app = self.app
        # The app's zone (a settings read) only for the options it reads naive datetimes of.
        timed = "eta" in options or "expires" in options
        return compose(name, body, options, target=target, queue=queue,
                       now=app.now, zone=app.timezone if timed else UTC,
                       destination=self._address(settings, name, queue, target, task)
                       if route and self.transport.addressed else None)

    def _queue(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
               options: Mapping[str, Any], task: Task[Any, Any] | None) -> str:
        queue = options.get("queue")
        if isinstance(queue, str) and queue:
            return queue
        router = self._router
        assert router is not None  # set with the settings
        cache = self._queues
        if cache is None or queue:  # router functions see each call; a Queue object is read
            return router.route(name, args, kwargs, options, task)
        found = cache.get(name)  # static routes: the queue depends on the name only
        if found is None:
            found = cache[name] = router.route(name, (), {}, {}, task)
        return found

    def address(self, message: Message) -> Message:
        """``message`` with its :class:`~celery_gcp.message.Destination` (see
        :meth:`destination`)."""
        return replace(message, destination=self.destination(
            message.task, message.queue, message.target))

    def destination(self, name: str, queue: str | None, target: HttpTarget | None,
                    task: Task[Any, Any] | None = None) -> Destination:
        """Where a message of task ``name`` in ``queue`` goes, from the app's settings (cached
        per task and queue); raises :class:`~celery_gcp.exceptions.ImproperlyConfigured`
        naming a missing setting (``task_base_url``, ``gcp_project``)."""
        return self._address(self._current(), name, queue, target, task)

    def _address(self, settings: Settings, name: str, queue: str | None,
                 target: HttpTarget | None, task: Task[Any, Any] | None) -> Destination:
        # The settings were just checked (a live source is read once per message).
        if target is not None:
            return self._destination(settings, name, queue, target, task)
        key = (name, queue)
        found = self._addresses.get(key)
        if found is None:
            found = self._addresses[key] = self._destination(settings, name, queue, None, task)
        return found

    def _destination(self, settings: Settings, name: str, queue: str | None,
                     target: HttpTarget | None, task: Task[Any, Any] | None) -> Destination:
        from . import gcp

        app = self.app
        path = self._paths.get(queue)
        if path is None:
            path = self._paths[queue] = gcp.queue_path(app, queue)
        if task is None:
            task = app.tasks.get(name)
        limit = getattr(task, "time_limit", None) or settings.task_time_limit
        if target is None:
            url = gcp.endpoint_url(app, name)
            method, relay, audience = "POST", True, url
        else:
            url = gcp.base_url(app) + target.path
            # The URL as the worker routes it (path decoded, no query): what it checks.
            method, relay, audience = target.method, target.relay, gcp.routed_path(url)
        account = settings.gcp_service_account or None
        if account is None:
            _warn_unsigned(app, settings)
        return Destination(
            queue_path=path, url=url, method=method,
            deadline=float(limit) if limit else None, service_account=account,
            audience=(settings.task_oidc_audience or audience) if account else None,
            relay=relay)

    # -- sending ---------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The app's transport."""
        return self.app._transport or self.app.transport

    def send(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Hand ``message`` to the app's transport between the layers' send steps."""
        return send(self.app.layers, self.transport, message, options)

    async def asend(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Async :meth:`send`."""
        return await asend(self.app.layers, self.transport, message, options)

    def send_many(self, messages: Sequence[Message],
                  options: SendOptions | None = None) -> list[Receipt | Exception]:
        """Send many messages in one bulk send; each slot holds a receipt or its error."""
        steps = self.app.layers.step
        sent = []
        for message in messages:
            for before in steps("before_send"):
                message = before(message) or message
            sent.append(message)
        messages = sent
        outcomes = self.transport.send_many(messages, options)
        for message, outcome in zip(messages, outcomes, strict=True):
            if not isinstance(outcome, Exception):
                for after in steps("after_send"):
                    after(message, outcome)
        return outcomes

    def forward(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Send a delivered message on as it is (a relay hop), outside the layers: it was
        announced when it was first sent."""
        if self.transport.addressed:
            message = self.address(message)
        return self.transport.send(message, options)

    async def aforward(self, message: Message, options: SendOptions | None = None) -> Receipt:
        """Async :meth:`forward`."""
        if self.transport.addressed:
            message = self.address(message)
        return await self.transport.asend(message, options)


def send(layers: Layers, transport: Transport, message: Message,
         options: SendOptions | None = None) -> Receipt:
    """Hand an addressed ``message`` to ``transport`` between the ``layers``' send steps."""
    # The steps as they are, without a call when nothing changed: this is every send's path.
    steps = layers.steps if layers.epoch == _layers._epoch else layers.refresh()
    for before in steps["before_send"]:
        message = before(message) or message
    receipt = transport.send(message, options)
    for after in steps["after_send"]:
        after(message, receipt)
    return receipt


async def asend(layers: Layers, transport: Transport, message: Message,
                options: SendOptions | None = None) -> Receipt:
    """Async :func:`send`."""
    steps = layers.steps if layers.epoch == _layers._epoch else layers.refresh()
    for before in steps["before_send"]:
        message = before(message) or message
    receipt = await transport.asend(message, options)
    for after in steps["after_send"]:
        after(message, receipt)
    return receipt


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime, zone: tzinfo) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _datetime(option: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise TaskArgumentError(f"{option}= must be a datetime or an ISO 8601 string, got {value!r}")
