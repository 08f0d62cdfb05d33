"""The Celery-compatible app: settings, the task registry, routing, and the worker's router.

The settings side is in app_settings.py, the tasks' (``@app.task``, finalize, autodiscovery)
in app_tasks.py, the worker's (``app.router``, ``app.TaskRoute``) in app_serving.py; here are
the constructor, sending, the transport, the result store and the queue router.

Example::

    from celery_gcp import Celery

    app = Celery("proj", task_base_url="https://worker-abc.a.run.app")

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    api = FastAPI()
    api.include_router(app.router)     # POST /_tasks/proj.add
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _state
from .app_serving import AppServing
from .app_tasks import AppTasks
from .config import Settings
from .contrib.django.fixup import fixup as django_fixup
from .exceptions import AlwaysEagerIgnored
from .layers import Layers
from .queue_routing import QueueRouter
from .registry import TaskRegistry
from .results.layer import ResultLayer
from .results.store import ResultStore
from .sending import Sender, send_options, warn_once
from .signals import Signal, SignalLayer
from .task import Task
from .transport import Transport, transport_for_url
from .utils.imports import import_object

if TYPE_CHECKING:
    from fastapi import APIRouter

    from .auth import Verifier
    from .fastapi.taskroute import TaskRoute
    from .result import AsyncResult

__all__ = ["Celery", "TaskRegistry"]

_UNSET = object()  # app.backend not chosen yet

# Celery constructor arguments for machinery that does not exist here (loaders, AMQP, events).
_CONSTRUCTOR_IGNORED = frozenset({
    "loader", "amqp", "events", "log", "control", "fixups", "tasks", "autofinalize",
})


class Celery(AppTasks, AppServing):
    """The application: ``Celery(main, broker=None, backend=None, include=None, **settings)``.

    ``broker``/``backend`` are accepted so existing code runs; a Redis or AMQP broker is ignored
    with one warning (tasks go through Cloud Tasks), ``"memory://"`` records messages for tests.
    """

    def __init__(
        self,
        main: str | None = None,
        broker: str | None = None,
        backend: str | None = None,
        include: Iterable[str] | None = None,
        task_cls: type[Task[Any, Any]] | str | None = None,
        set_as_current: bool = True,
        namespace: str | None = None,
        strict_typing: bool = True,
        config_source: Any = None,
        changes: dict[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        self.main = main
        self._task_cls = task_cls  # as given, to rebuild the app when unpickled
        #: The default namespace of ``config_from_object`` (``"CELERY"`` for Django projects).
        self.namespace = namespace
        #: The default of every task's ``typing`` option, as in Celery.
        self.strict_typing = strict_typing
        self._preconf: dict[str, Any] = dict(changes or {})
        self._sources: list[tuple[Any, str | None, bool]] = []
        if config_source is not None:
            self._sources.append((config_source, namespace, False))
        for key in _CONSTRUCTOR_IGNORED & settings.keys():
            settings.pop(key)
        if broker is not None:
            self._preconf["broker_url"] = broker
        if backend is not None:
            self._preconf["result_backend"] = backend
        if include is not None:
            self._preconf["include"] = tuple(include)
        self._preconf.update(settings)
        self._conf: Settings | None = None
        self._verifier: Verifier | None = None
        self._tasks = TaskRegistry(self)
        self._finalized = False
        self._pending_autodiscover: list[tuple[Any, str]] = []
        self._transport: Transport | None = None
        self._backend: ResultStore | object | None = _UNSET
        self._queue_router: tuple[int, QueueRouter] | None = None
        self._router: APIRouter | None = None
        self._task_route: type[TaskRoute] | None = None
        self._warned: set[str] = set()
        #: The send path (:mod:`celery_gcp.sending`).
        self.sender = Sender(self)
        #: The layers around every send and run (:mod:`celery_gcp.layers`); Celery's signals
        #: are the first, the result store's (idle without one) the second.
        self.layers = Layers([SignalLayer(), ResultLayer(self)])
        self.on_configure = Signal(name="app.on_configure")
        self.on_after_configure = Signal(name="app.on_after_configure")
        self.on_after_finalize = Signal(name="app.on_after_finalize")
        self.on_after_fork = Signal(name="app.on_after_fork")
        # Celery's Django fixup (None unless DJANGO_SETTINGS_MODULE is set): DjangoTask as the
        # default task class, django.setup() at finalize, DB connections closed around runs.
        self._django = django_fixup(self)
        base: type[Task[Any, Any]] = (
            import_object(task_cls) if isinstance(task_cls, str)
            else task_cls or (self._django.task_cls if self._django else Task)
        )
        self.Task: type[Task[Any, Any]] = type(base.__name__, (base,), {
            "app": self, "abstract": True, "__module__": base.__module__,
        })
        _state.register_app(self)
        if set_as_current:
            _state.set_current_app(self)
        _state.apply_finalizers(self)

    def set_current(self) -> None:
        """Make this app the current one (``current_app``, ``get_current_app()``)."""
        _state.set_current_app(self)

    # -- sending ---------------------------------------------------------------------------

    def send_task(self, name: str, args: Sequence[Any] | None = None,
                  kwargs: Mapping[str, Any] | None = None, **options: Any) -> AsyncResult[Any]:
        """Send a task by name; a locally registered task's arguments are validated."""
        from .result import AsyncResult

        sender = self.sender
        if sender.eager():
            warn_once(self, "send_task-eager", "task_always_eager has no effect on send_task: "
                      "the task is sent (as in Celery); call the task's apply_async to run it "
                      "eagerly", category=AlwaysEagerIgnored)
        options = {k: v for k, v in options.items() if v is not None}
        task = self.tasks.get(name)
        if task is not None and task.queue and "queue" not in options:
            options["queue"] = task.queue
        message = sender.message(name, task, args, kwargs, options)
        receipt = sender.send(message, send_options(options))
        result: AsyncResult[Any] = AsyncResult(receipt.task_id, task_name=name, app=self,
                                               location=receipt.name)
        result.ignored = bool(options.get("ignore_result"))  # as Celery's send_task
        return result

    @property
    def current_task(self) -> Task[Any, Any] | None:
        """The task being run in this thread or asyncio task, or ``None`` (as Celery's)."""
        from ._state import get_current_task

        return get_current_task()

    @property
    def transport(self) -> Transport:
        """The transport chosen by ``broker_url``; assign one to replace it (tests)."""
        if self._transport is None:
            conf = self.conf
            self._transport = transport_for_url(
                conf.broker_url, clock=lambda: self.now().timestamp(),
                concurrency=int(conf.get("task_send_concurrency") or 16))
        return self._transport

    @transport.setter
    def transport(self, transport: Transport) -> None:
        self._transport = transport

    @property
    def backend(self) -> ResultStore | None:
        """The result store ``result_backend`` names (``None``: no store, as without a
        Celery result backend); assign one to replace it (tests: ``MemoryStore()``)."""
        if self._backend is _UNSET:
            url = self.conf.get("result_backend")
            if url:
                from .results import store_for_url

                self._backend = store_for_url(str(url), conf=self.conf)
            else:
                self._backend = None
        return self._backend  # type: ignore[return-value]

    @backend.setter
    def backend(self, store: ResultStore | None) -> None:
        self._backend = store
        self.layers.epoch = -1  # the result layer's wishes follow the store

    @property
    def queue_router(self) -> QueueRouter:
        """The routing of task calls to queues (``task_routes``, ``task_default_queue``)."""
        conf = self.conf
        cached = self._queue_router
        if cached is None or cached[0] != conf.version:
            from .queue_bindings import Bindings

            cached = (conf.version, QueueRouter(conf.task_routes, conf.task_default_queue,
                                                Bindings.from_settings(conf)))
            self._queue_router = cached
        return cached[1]

    def AsyncResult(self, id: str | None = None, *, task_id: str | None = None,
                    **kwargs: Any) -> AsyncResult[Any]:
        """The result handle for task ``id`` (Celery's parameter name; ``task_id=`` too)."""
        from .result import AsyncResult

        if (id is None) == (task_id is None):
            raise TypeError("AsyncResult() takes the task id once: AsyncResult(id) or "
                            "AsyncResult(id=...)")
        return AsyncResult(id if id is not None else task_id, app=self,  # type: ignore[arg-type]
                           **kwargs)
    def close(self) -> None:
        """Close the transport."""
        if self._transport is not None:
            self._transport.close()
        if isinstance(self._backend, ResultStore):
            self._backend.close()

    def __enter__(self) -> Celery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Celery {self.main or '__main__'} at {id(self):#x}>"

    if not TYPE_CHECKING:  # hidden from type checkers, so a typo stays a type error

        def __getattr__(self, name: str) -> Any:
            # Celery's attributes left out on purpose (app.control, app.connection, ...) say
            # so and name the guide's section; any other name is a plain AttributeError.
            from .absent import attribute_error

            raise attribute_error(f"{type(self).__name__!r} object", f"app.{name}", name)
