"""The Celery-compatible app: settings, the task registry, routing, and the worker's router.

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

import importlib
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, overload

from . import _state
from .annotations import annotate
from .app_settings import AppSettings
from .config import Settings
from .contrib.django.fixup import fixup as django_fixup
from .contrib.django.fixup import no_apps_reason
from .exceptions import AlwaysEagerIgnored, CeleryGcpWarning
from .layers import Layers
from .queue_routing import QueueRouter
from .registry import TaskRegistry, check_task_name, make_task
from .results.layer import ResultLayer
from .results.store import ResultStore
from .sending import Sender, send_options, warn_once
from .signals import Signal, SignalLayer, import_modules
from .task import Task
from .transport import Transport, transport_for_url
from .utils.imports import django_app_packages, import_object, import_related

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from .auth import Verifier
    from .canvas import Signature
    from .fastapi.taskroute import TaskRoute
    from .result import AsyncResult

__all__ = ["Celery", "TaskRegistry"]

P = ParamSpec("P")
R = TypeVar("R")
_UNSET = object()  # app.backend not chosen yet
logger = logging.getLogger("celery_gcp")

# Celery constructor arguments for machinery that does not exist here (loaders, AMQP, events).
_CONSTRUCTOR_IGNORED = frozenset({
    "loader", "amqp", "events", "log", "control", "fixups", "tasks", "autofinalize",
})


class Celery(AppSettings):
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

    # -- tasks -----------------------------------------------------------------------------

    @overload
    def task(self, fun: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def task(self, *, bind: Literal[True], name: str | None = None,
             base: type[Task[Any, Any]] | None = None,
             **options: Any) -> Callable[[Callable[Concatenate[Any, P], R]], Task[P, R]]: ...
    @overload
    def task(self, *, bind: Literal[False] = False, name: str | None = None,
             base: type[Task[Any, Any]] | None = None,
             **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, *args: Any, **options: Any) -> Any:
        """Turn a function into a task: ``@app.task`` or ``@app.task(bind=True, ...)``."""
        if len(args) == 1 and callable(args[0]) and not options:
            return self._task_from_fun(args[0])
        if args:
            raise TypeError("argument 1 to @task() must be a callable")

        def decorate(fun: Callable[..., Any]) -> Task[Any, Any]:
            return self._task_from_fun(fun, **options)

        return decorate

    def _task_from_fun(self, fun: Callable[..., Any], name: str | None = None,
                       base: type[Task[Any, Any]] | None = None, bind: bool = False,
                       **options: Any) -> Task[Any, Any]:
        name = name or self.gen_task_name(fun.__name__, fun.__module__)
        if name in self._tasks:
            return self._tasks[name]
        task = make_task(self, fun, name, base or self.Task, bind, options)
        self._register(task)
        return task

    def register_task(self, task: Task[Any, Any] | type[Task[Any, Any]]) -> Task[Any, Any]:
        """Register a class-based task (an instance, or a class to instantiate)."""
        if isinstance(task, type):
            task = task()
        cls = type(task)
        if not getattr(cls, "name", None):
            cls.name = self.gen_task_name(cls.__name__, cls.__module__)
        check_task_name(cls.name)
        cls.app = self
        self._register(task)
        return task

    def _register(self, task: Task[Any, Any]) -> None:
        self._tasks[task.name] = task
        if self._finalized:
            annotate(task, self.conf.task_annotations)
        if self._router is not None:
            from .worker.endpoints import add_task_route

            logger.warning(
                "task %r was registered after app.router was built; a FastAPI app that "
                "included the router earlier does not serve it. Import task modules first.",
                task.name,
            )
            add_task_route(self._router, self, task)

    def gen_task_name(self, name: str, module: str) -> str:
        """Celery's default task name: ``module.name`` (``main.name`` for ``__main__``)."""
        if module == "__main__" and self.main:
            return f"{self.main}.{name}"
        return f"{module}.{name}" if module else name

    @property
    def tasks(self) -> TaskRegistry:
        """The registered tasks; reading it finalizes the app."""
        if not self._finalized:
            self.finalize(auto=True)
        return self._tasks

    def finalize(self, auto: bool = False) -> None:
        """Import ``imports``/``include`` and discovered modules; fire ``on_after_finalize``."""
        if self._finalized:
            return
        self._finalized = True
        if self._django is not None:
            self._django.setup()  # before any task module imports Django models
        conf = self.conf
        for module in (*(conf.imports or ()), *(conf.include or ())):
            importlib.import_module(module)
        self._run_autodiscover()
        for task in self._tasks.values():
            annotate(task, conf.task_annotations)
        if import_modules.receivers:
            import_modules.send(sender=self)
        self.on_after_finalize.send(sender=self)

    def autodiscover_tasks(
        self,
        packages: Iterable[str] | Callable[[], Iterable[str]] | None = None,
        related_name: str | None = "tasks",
        force: bool = False,
    ) -> None:
        """Import ``{package}.{related_name}`` for each package, at finalize (now if ``force``).

        ``packages`` may be a callable returning the list (Django: ``lambda:
        settings.INSTALLED_APPS``); with none given, Django's ``INSTALLED_APPS`` when Django is
        configured.
        """
        self._pending_autodiscover.append((packages, related_name or "tasks"))
        if force or self._finalized:
            self._run_autodiscover()

    def _run_autodiscover(self) -> None:
        pending, self._pending_autodiscover = self._pending_autodiscover, []
        for packages, related_name in pending:
            names = packages() if callable(packages) else packages
            if names is None:
                names = django_app_packages()
                if not names:
                    warnings.warn(f"autodiscover_tasks() found no Django apps: "
                                  f"{no_apps_reason()}", CeleryGcpWarning, stacklevel=3)
            for package in names:
                import_related(package, related_name)

    def add_periodic_task(self, schedule: Any, sig: Signature, args: Sequence[Any] = (),
                          kwargs: Mapping[str, Any] | None = None, name: str | None = None,
                          **options: Any) -> str:
        """Add an entry to ``beat_schedule`` (as Celery does); returns its key.

        ``enabled=``, ``sub_minute=`` and ``job=`` set those keys of the entry (see
        :mod:`celery_gcp.beat`); other options are the entry's ``apply_async`` options.
        A crontab that can never run is refused here.

        Example::

            @app.on_after_configure.connect
            def setup(sender, **kwargs):
                sender.add_periodic_task(crontab(minute=0, hour=7), report.s("daily"))
        """
        from .schedules import crontab, maybe_schedule

        checked = maybe_schedule(schedule, app=self)  # stored as given, as Celery does
        if isinstance(checked, crontab):
            checked.cron()  # raises ScheduleError for one that can never run
        key = name or repr(sig)
        entry: dict[str, Any] = {
            "schedule": schedule, "task": sig.task, "args": tuple(sig.args or args),
            "kwargs": dict(sig.kwargs or kwargs or {}),
        }
        for own in ("enabled", "sub_minute", "job"):
            if own in options:
                entry[own] = options.pop(own)
        entry["options"] = {**sig.options, **options}
        schedule_table = dict(self.conf.beat_schedule or {})
        schedule_table[key] = entry
        self.conf.beat_schedule = schedule_table
        return key

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

    # -- serving ---------------------------------------------------------------------------

    @property
    def router(self) -> APIRouter:
        """The FastAPI router with one POST endpoint per task; include it in your app."""
        if self._router is None:
            from .utils.cloud_logging import structured

            if structured(self):  # on Cloud Run: JSON lines for Cloud Logging from the start
                from .utils.cloud_logging import setup_logging

                setup_logging(self)
            from .worker.endpoints import build_router

            self._router = build_router(self)
        return self._router

    @property
    def TaskRoute(self) -> type[TaskRoute]:
        """A route class whose routes are tasks of this app::

            router = APIRouter(route_class=app.TaskRoute)

        Each endpoint gets ``.delay``, ``.apply_async`` and ``.s`` with this app's routing,
        retries, signals and outcome table (see :mod:`celery_gcp.fastapi.taskroute`).
        """
        if self._task_route is None:
            from .fastapi.taskroute import route_class

            self._task_route = route_class(self)
        return self._task_route

    @property
    def verifier(self) -> Verifier:
        """Checks that task and beat requests come from Cloud Tasks / Cloud Scheduler."""
        if self._verifier is None:
            from .auth import Verifier

            self._verifier = Verifier(self)
        return self._verifier

    def asgi_app(self, *, docs: bool | None = None) -> FastAPI:
        """A FastAPI app that serves only this app's task endpoints (``celery-gcp worker``).

        It serves ``/openapi.json``, ``/docs`` and ``/redoc`` only if ``docs`` (default: the
        ``worker_docs`` setting, off) is true: they list every task's name, arguments and
        docstring to anyone who can reach the URL, without a token.
        """
        from fastapi import FastAPI

        if docs is None:
            docs = bool(self.conf.get("worker_docs"))
        # Without an OpenAPI URL, FastAPI serves neither /docs nor /redoc.
        api = FastAPI(title=f"{self.main or 'celery_gcp'} tasks",
                      openapi_url="/openapi.json" if docs else None)
        api.include_router(self.router)
        return api

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
